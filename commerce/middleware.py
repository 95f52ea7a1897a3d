"""Middleware of the shop."""

from django.urls import get_script_prefix, reverse

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
        self.path_info = None

    def __call__(self, request):
        if self.path_info is None:  # the URLconf is loaded by the first request
            # Matched as the URL resolver matches, without the script prefix, which the
            # first request may not share with the next.
            self.path_info = "/" + reverse("stripe_webhook").removeprefix(get_script_prefix())
        if request.method == "POST" and request.path_info == self.path_info:
            request.get_host()  # DisallowedHost (400) for a host not allowed, as usual
            response = stripe_webhook(request)
            if not response.streaming and not response.has_header("Content-Length"):
                # as CommonMiddleware does
                response.headers["Content-Length"] = str(len(response.content))
            return response
        return self.get_response(request)
