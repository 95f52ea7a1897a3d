"""django-allauth glue: purchases follow proven addresses."""

from allauth.account.models import EmailAddress

from commerce.claims import attach_guest_purchases


def prove_email(user, email):
    """The claim link reached this address, so the account controls it."""
    address = EmailAddress.objects.filter(user=user, email__iexact=email).first()
    if address is None:
        EmailAddress.objects.create(
            user=user,
            email=email,
            verified=True,
            primary=not EmailAddress.objects.filter(user=user).exists(),
        )
    elif not address.verified:
        address.verified = True
        address.save(update_fields=["verified"])


def claim_verified_addresses(user):
    for email in EmailAddress.objects.filter(user=user, verified=True).values_list(
        "email", flat=True
    ):
        attach_guest_purchases(user, email, proof="verified address")


def on_email_confirmed(request, email_address, **kwargs):
    attach_guest_purchases(email_address.user, email_address.email, proof="verified address")


def on_user_logged_in(request, user, **kwargs):
    claim_verified_addresses(user)
