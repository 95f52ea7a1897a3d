"""The instructors' report in the Wagtail admin: learners' progress in a course, filterable,
exportable (CSV/XLSX with formula-safe cells), and where learners stop."""

import django_filters
from django.db.models import Q
from django.utils.functional import cached_property
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.views.reports import ReportView
from wagtail.permission_policies import ModelPermissionPolicy

from commerce.backoffice.viewsets import spreadsheet_safe
from courses.models import CoursePage
from learner import reports
from learner.models import LessonProgress

STATUSES = [
    ("in_progress", "In progress"),
    ("completed", "Completed every lesson"),
    ("not_started", "Not started"),
]


class LearnerFilterSet(WagtailFilterSet):
    course = django_filters.ChoiceFilter(
        choices=[], label="Course", empty_label=None, method="applied_by_the_report"
    )
    status = django_filters.ChoiceFilter(
        choices=STATUSES, label="Progress", method="applied_by_the_report"
    )
    learner = django_filters.CharFilter(label="Name or e-mail contains", method="by_learner")

    class Meta:
        model = LessonProgress
        fields = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["course"].extra["choices"] = course_choices()

    def applied_by_the_report(self, queryset, name, value):
        """The course picks the rows and the status is computed per row: both are applied by
        LearnerProgressReport, not to this queryset."""
        return queryset

    def by_learner(self, queryset, name, value):
        for word in value.split()[:5]:
            queryset = queryset.filter(
                Q(email__icontains=word)
                | Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
            )
        return queryset


def course_choices():
    return [
        (str(pk), title)
        for pk, title in CoursePage.objects.order_by("title").values_list("pk", "title")
    ]


class LearnerProgressReport(ReportView):
    permission_policy = ModelPermissionPolicy(LessonProgress)
    permission_required = "view"
    page_title = "Learner progress"
    header_icon = "group"
    results_template_name = "learner/admin/progress_report_results.html"
    index_url_name = "learner_progress_report"
    index_results_url_name = "learner_progress_report_results"
    filterset_class = LearnerFilterSet
    list_export = [
        "name",
        "email",
        "done",
        "total",
        "percent",
        "last_activity",
        "quiz_scores",
        "certificate",
        "access",
    ]
    export_headings = {
        "name": "Name",
        "email": "E-mail",
        "done": "Lessons completed",
        "total": "Lessons",
        "percent": "Progress (%)",
        "last_activity": "Last activity",
        "quiz_scores": "Best quiz scores",
        "certificate": "Certificate",
        "access": "Access",
    }

    def get_breadcrumbs_items(self):
        return [*self.breadcrumbs_items, {"url": "", "label": self.page_title}]

    def preprocess_field_value(self, field, value, export_format):
        return spreadsheet_safe(super().preprocess_field_value(field, value, export_format))

    def get_filename(self):
        return f"learners-{self.course.slug}" if self.course else "learners"

    def _chosen(self, name):
        valid = self.filters is not None and self.filters.is_valid()
        return self.filters.form.cleaned_data.get(name) if valid else None

    @cached_property
    def course(self):
        """The course chosen, else the first by title (the report is always about one)."""
        chosen = self._chosen("course")
        courses = CoursePage.objects.order_by("title")
        return (courses.filter(pk=chosen).first() if chosen else None) or courses.first()

    @cached_property
    def lessons(self):
        return reports.lessons_of(self.course) if self.course else []

    def get_queryset(self):
        from django.contrib.auth import get_user_model

        if self.course is None:
            return get_user_model().objects.none()
        return reports.learners_of(self.course, len(self.lessons))

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        return reports.by_status(queryset, self._chosen("status"), len(self.lessons))

    def decorate_paginated_queryset(self, object_list):
        if self.course is None:
            return []
        return reports.describe(self.course, self.lessons, list(object_list))

    def get_context_data(self, *args, **kwargs):
        context = super().get_context_data(*args, **kwargs)
        people, funnel = (0, [])
        if self.course is not None:
            people, funnel = reports.where_learners_stop(
                self.course, self.lessons, self.object_list
            )
        context.update(course=self.course, funnel=funnel, people=people)
        return context
