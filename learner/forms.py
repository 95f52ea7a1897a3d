from django import forms


class FindPurchasesForm(forms.Form):
    email = forms.EmailField(max_length=254, label="The e-mail you bought with")
