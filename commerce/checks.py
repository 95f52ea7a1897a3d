from django.conf import settings
from django.core.checks import Error, register

STRIPE_HOSTS = ("https://api.stripe.com",)


@register()
def stripe_emulator_not_in_production(app_configs, **kwargs):
    """The local emulator (or any non-Stripe API base) must never serve a production site."""
    base = settings.STRIPE_API_BASE
    if settings.DEBUG or not base or base.startswith(STRIPE_HOSTS):
        return []
    return [
        Error(
            f"STRIPE_API_BASE points at {base} with DEBUG off.",
            hint="The local Stripe emulator is for development and tests only; unset "
            "STRIPE_API_BASE in production.",
            id="commerce.E001",
        )
    ]
