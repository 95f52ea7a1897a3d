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


def test_production_without_stream_signing_keys_is_warned(settings):
    from courses.checks import stream_playback_is_signed

    settings.DEBUG = False
    settings.STREAM_SIGNING_KEY_ID = settings.STREAM_SIGNING_KEY_PEM = ""
    assert [w.id for w in stream_playback_is_signed(None)] == ["courses.W001"]


def test_stream_signing_keys_silence_the_warning(settings):
    from courses.checks import stream_playback_is_signed

    settings.DEBUG = False
    settings.STREAM_SIGNING_KEY_ID, settings.STREAM_SIGNING_KEY_PEM = "key", "pem"
    assert stream_playback_is_signed(None) == []


def test_the_models_and_migrations_agree(db):
    """Settings never leak into a migration: makemigrations finds nothing to write."""
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_new_courses_are_priced_in_the_default_currency(settings, db):
    from courses.models import CoursePage

    settings.DEFAULT_CURRENCY = "eur"
    assert CoursePage(title="x").price_currency == "eur"


def test_a_default_currency_no_course_may_use_is_warned(settings):
    from courses.checks import default_currency_is_offered

    settings.DEFAULT_CURRENCY = "xyz"
    assert [w.id for w in default_currency_is_offered(None)] == ["courses.W002"]
