from django import forms


class FindPurchasesForm(forms.Form):
    email = forms.EmailField(max_length=254, label="The e-mail you bought with")


class CertificateNameForm(forms.Form):
    name = forms.CharField(
        max_length=150, min_length=2, strip=True, label="Name on the certificate"
    )

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in name) or "\x00" in name:
            raise forms.ValidationError("A name cannot contain control characters.")
        if len(name) < 2:
            raise forms.ValidationError("Enter the name to print, at least two characters.")
        return name
