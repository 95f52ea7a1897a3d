from django import forms


class GuestCheckoutForm(forms.Form):
    email = forms.EmailField(
        max_length=254,
        label="Your e-mail",
        help_text="Your receipt and access link go here.",
    )
