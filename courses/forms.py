"""Admin forms for course pages: checks that need the inline rows as the editor sent them."""

from wagtail.admin.forms import WagtailAdminPageForm


class BundlePageForm(WagtailAdminPageForm):
    """A bundle is sold in one currency, so every course in it is priced in that currency, and
    a course is in it once. Checked here, where the inline rows are the ones being saved."""

    def clean(self):
        cleaned = super().clean()
        formset = self.formsets.get("bundle_courses")
        if formset is None or not formset.is_valid():
            return cleaned
        courses = [
            form.cleaned_data["course"]
            for form in formset.forms
            if form.cleaned_data.get("course") and not form.cleaned_data.get("DELETE")
        ]
        if len({course.pk for course in courses}) != len(courses):
            self.add_error(None, "A course appears twice in this bundle.")
        currency = cleaned.get("price_currency")
        other = sorted({c.title for c in courses if currency and c.price_currency != currency})
        if other:
            self.add_error(
                "price_currency",
                f"Priced in another currency than the bundle's: {', '.join(other)}.",
            )
        return cleaned
