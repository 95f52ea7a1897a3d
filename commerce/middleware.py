"""Middleware of the shop."""

from django.urls import reverse

from commerce.views import stripe_webhook


class StripeWebhookMiddleware:
    """Stripe's POST goes straight to the webhook view, past the learner site's middleware.

    The view is signed, CSRF-exempt and non-atomic, and reads no session, user, message,
    site or redirect; the eleven middleware after this one and URL resolution were a tenth of
    a first delivery's Python instructions and a fifth of an unhandled event's
    (docs/performance.md). It sits after SecurityMiddleware (HTTPS redirect, HSTS) and checks
    the host against ALLOWED_HOSTS as CommonMiddleware would."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.path = None

    def __call__(self, request):
        if self.path is None:  # the URLconf is loaded by the first request, not at start-up
            self.path = reverse("stripe_webhook")
        if request.method == "POST" and request.path == self.path:
            request.get_host()  # DisallowedHost (400) for a host not allowed, as usual
            return stripe_webhook(request)
        return self.get_response(request)
