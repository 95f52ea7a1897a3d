from commerce.checks import stripe_emulator_not_in_production


def test_the_emulator_is_refused_when_debug_is_off(settings):
    settings.DEBUG = False
    settings.STRIPE_API_BASE = "http://127.0.0.1:12111"
    assert [e.id for e in stripe_emulator_not_in_production(None)] == ["commerce.E001"]


def test_the_emulator_is_allowed_in_development(settings):
    settings.DEBUG = True
    settings.STRIPE_API_BASE = "http://127.0.0.1:12111"
    assert stripe_emulator_not_in_production(None) == []


def test_real_stripe_is_allowed_in_production(settings):
    settings.DEBUG = False
    settings.STRIPE_API_BASE = ""
    assert stripe_emulator_not_in_production(None) == []
