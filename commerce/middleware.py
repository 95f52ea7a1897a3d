"""Middleware of the shop."""

from django.urls import reverse


class StripeWebhookMiddleware:
    """Stripe's POST goes straight to the webhook view, past the learner site's middleware.

    The view is signed, CSRF-exempt and non-atomic, and reads no session, user, message,
    site or redirect; the eleven middleware after this one cost a first delivery about as
    much Python as its ledger (docs/performance.md). It sits after SecurityMiddleware (HTTPS
    redirect, HSTS) and checks the host against ALLOWED_HOSTS as CommonMiddleware would."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.path = None

    def __call__(self, request):
        if self.path is None:  # the URLconf is loaded by the first request, not at start-up
            self.path = reverse("stripe_webhook")
        if request.method == "POST" and request.path == self.path:
            from commerce.views import stripe_webhook

            request.get_host()  # DisallowedHost (400) for a host not allowed, as usual
            return stripe_webhook(request)
        return self.get_response(request)
