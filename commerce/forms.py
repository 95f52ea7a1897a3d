import re
from datetime import timedelta

from django import forms
from django.utils import timezone

# C0 and C1 control characters, DEL, and the Unicode line/paragraph separators; a message keeps
# its ordinary line breaks (and tabs).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
CONTROL_IN_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class GuestCheckoutForm(forms.Form):
    email = forms.EmailField(
        max_length=254,
        label="Your e-mail",
        help_text="Your receipt and access link go here.",
    )


class GiftForm(forms.Form):
    """A course or bundle bought for someone else, told on ``deliver_on``."""

    recipient_email = forms.EmailField(max_length=254, label="Recipient's e-mail")
    recipient_name = forms.CharField(max_length=100, required=False, label="Recipient's name")
    gift_message = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Message (optional)",
        help_text="Up to 500 characters. Sign it: the e-mail does not say who the gift is from.",
    )
    deliver_on = forms.DateField(
        required=False,
        label="Deliver on",
        help_text="Today unless you pick a later day (up to a year ahead).",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    MAX_AHEAD = timedelta(days=365)

    def clean_recipient_name(self):
        name = self.cleaned_data["recipient_name"].strip()
        if CONTROL_IN_LINE.search(name):
            raise forms.ValidationError("The name may not contain control characters.")
        return name

    def clean_gift_message(self):
        message = self.cleaned_data["gift_message"].strip().replace("\r\n", "\n")
        if CONTROL.search(message):
            raise forms.ValidationError("The message may not contain control characters.")
        return message

    def clean_deliver_on(self):
        today = timezone.localdate()
        day = self.cleaned_data["deliver_on"] or today
        if day < today:
            raise forms.ValidationError("The delivery date is in the past.")
        if day > today + self.MAX_AHEAD:
            raise forms.ValidationError("Pick a delivery date within a year.")
        return day
