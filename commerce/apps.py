from django.apps import AppConfig


class CommerceConfig(AppConfig):
    """Money and access: orders, the Stripe gateway, the webhook ledger, entitlements."""

    name = "commerce"

    def ready(self):
        from commerce import checks, signals  # noqa: F401 - registers checks and receivers
        from commerce.backoffice.viewsets import register_policies

        register_policies()
