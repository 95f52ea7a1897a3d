from django.conf import settings
from django.core.checks import Error, Warning, register

STRIPE_HOSTS = ("https://api.stripe.com",)


@register()
def stripe_emulator_not_in_production(app_configs, **kwargs):
    """The local emulator (or any non-Stripe API base) must never serve a production site,
    unless a staging run opts in explicitly, with a test-mode key."""
    base = settings.STRIPE_API_BASE
    if settings.DEBUG or not base or base.startswith(STRIPE_HOSTS):
        return []
    test_key = (settings.STRIPE_SECRET_KEY or "").startswith(("sk_test_", "rk_test_"))
    if settings.STRIPE_ALLOW_TEST_SERVER and test_key:
        return [
            Warning(
                f"STRIPE_API_BASE points at {base} with DEBUG off: allowed for staging by "
                "STRIPE_ALLOW_TEST_SERVER.",
                hint="Unset STRIPE_API_BASE and STRIPE_ALLOW_TEST_SERVER for a real site.",
                id="commerce.W001",
            )
        ]
    hint = (
        "The local Stripe emulator is for development and tests only; unset STRIPE_API_BASE "
        "in production. A staging run may set STRIPE_ALLOW_TEST_SERVER=1 with a test-mode key."
    )
    if settings.STRIPE_ALLOW_TEST_SERVER:
        hint = "STRIPE_ALLOW_TEST_SERVER is set, but STRIPE_SECRET_KEY is not a test-mode key."
    return [
        Error(f"STRIPE_API_BASE points at {base} with DEBUG off.", hint=hint, id="commerce.E001")
    ]
