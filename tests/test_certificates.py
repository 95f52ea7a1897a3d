"""Certificates: issued once when a course is completed, a PDF for its owner, a public page that
confirms it, void when the money came back in full."""

import io
import os

import pytest
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader

from commerce.models import Entitlement
from learner import certificates, progress
from learner.models import Certificate, CourseCompletion
from tests.helpers import deliver, entitle, events, postgres_only, run_together, start


@pytest.fixture
def student(learner, course, client):
    learner.first_name, learner.last_name = "Ada", "Lovelace"
    learner.save()
    entitle(learner, course)
    client.force_login(learner)
    return client


def complete_all(user, course):
    for lesson in course.lessons().specific():
        progress.mark_complete(user, lesson, course)


@pytest.fixture
def issued(student, learner, course):
    complete_all(learner, course)
    return Certificate.objects.get()


def text_of(pdf_bytes):
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf_bytes)).pages)


def test_completing_every_lesson_issues_one_certificate(issued, learner, course):
    assert (issued.user, issued.course, issued.name) == (learner, course, "Ada Lovelace")
    assert issued.course_title == course.title
    assert certificates.CODE.match(issued.code)


def test_completing_lessons_again_issues_nothing_more(issued, learner, course):
    complete_all(learner, course)
    assert Certificate.objects.count() == 1 and Certificate.objects.get().code == issued.code


def test_no_certificate_while_a_lesson_is_not_complete(student, learner, course):
    progress.mark_complete(learner, course.lessons().specific().first(), course)
    assert not Certificate.objects.exists()


def test_a_learner_without_a_name_gets_their_address_before_the_at(learner, course):
    learner.first_name = learner.last_name = ""
    learner.save()
    entitle(learner, course)
    complete_all(learner, course)
    assert Certificate.objects.get().name == "learner"


@postgres_only
def test_the_last_two_lessons_completed_at_once_issue_exactly_one_certificate(
    transactional_db, learner, course
):
    entitle(learner, course)
    first, second = list(course.lessons().specific())
    run_together(
        lambda: progress.mark_complete(learner, first, course),
        lambda: progress.mark_complete(learner, second, course),
    )
    assert CourseCompletion.objects.count() == 1
    assert Certificate.objects.count() == 1


# --- the PDF -------------------------------------------------------------------------------


def test_the_owner_downloads_a_pdf_naming_them_the_course_the_date_and_the_code(
    student, issued, settings
):
    response = student.get(reverse("certificate_pdf", args=[issued.code]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert f'filename="certificate-{issued.code}.pdf"' in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    text = text_of(response.content)
    assert "Ada Lovelace" in text and issued.course_title in text
    assert issued.issued_at.strftime("%-d %B %Y") in text
    assert issued.code in text and f"{settings.SITE_URL}/certificates/{issued.code}/" in text


@pytest.mark.skipif(
    not any(os.path.isfile(p) for p in certificates.FONT_CANDIDATES),
    reason="no Unicode TrueType font installed (make fonts installs DejaVu Sans)",
)
def test_a_name_beyond_latin_1_is_printed(student, issued):
    issued.name = "Łukasz Żółć 李雷"
    issued.save()
    text = text_of(student.get(reverse("certificate_pdf", args=[issued.code])).content)
    assert "Łukasz Żółć" in text


def test_without_a_unicode_font_accents_are_dropped_and_other_letters_replaced():
    assert certificates._latin1("Renée Łukasz Żółć") == "Renee ?ukasz Zo?c"


def test_another_learner_cannot_download_it(issued, client, django_user_model):
    client.force_login(django_user_model.objects.create_user("eve", "eve@example.com", "pw"))
    assert client.get(reverse("certificate_pdf", args=[issued.code])).status_code == 404


def test_a_visitor_is_sent_to_log_in_for_the_pdf(issued):
    response = Client().get(reverse("certificate_pdf", args=[issued.code]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_my_courses_offers_the_certificate(student, issued):
    html = student.get(reverse("my_courses")).content.decode()
    assert reverse("certificate_pdf", args=[issued.code]) in html
    assert reverse("certificate", args=[issued.code]) in html


# --- the public page -----------------------------------------------------------------------


def test_the_public_page_confirms_name_course_and_date_only(issued, learner):
    response = Client().get(reverse("certificate", args=[issued.code]))
    html = response.content.decode()
    assert response.status_code == 200 and response["X-Robots-Tag"] == "noindex"
    assert "Valid" in html and "Ada Lovelace" in html and issued.course_title in html
    assert issued.issued_at.strftime("%-d %B %Y") in html
    assert learner.email not in html and "learner@" not in html


def test_a_code_typed_in_lower_case_is_found(issued):
    assert Client().get(f"/certificates/{issued.code.lower()}/").status_code == 200


@pytest.mark.parametrize(
    "code", ["0000-0000-0000", "XXXX", "ABCD-EFGH-IJKL", "../../etc", "%00", "A" * 300]
)
def test_an_unknown_or_malformed_code_is_404(db, code):
    assert Client().get(f"/certificates/{code}/").status_code == 404


# --- void after the money came back --------------------------------------------------------


@pytest.fixture
def bought_and_completed(course, learner, emulator):
    client = Client()
    client.force_login(learner)
    order = start(client, course, email=learner.email)
    emulator.pay(order.stripe_session_id)
    deliver(*events(emulator, order))
    complete_all(learner, course)
    order.refresh_from_db()
    return order


def test_a_full_refund_voids_the_certificate_on_its_page(bought_and_completed, emulator):
    order = bought_and_completed
    emulator.create_refund({"payment_intent": order.stripe_payment_intent_id})
    deliver(events(emulator, order, "charge.refunded")[-1])
    certificate = Certificate.objects.get()
    assert certificate.is_void and certificate.void_reason == "refunded in full"
    html = Client().get(reverse("certificate", args=[certificate.code])).content.decode()
    assert "void" in html and "Valid" not in html


def test_a_partial_refund_leaves_it_valid(bought_and_completed, emulator):
    order = bought_and_completed
    emulator.create_refund({"payment_intent": order.stripe_payment_intent_id, "amount": 900})
    deliver(events(emulator, order, "charge.refunded")[-1])
    assert not Certificate.objects.get().is_void


def test_access_revoked_otherwise_leaves_it_valid(issued, learner, course):
    entitlement = Entitlement.objects.get(user=learner, course=course)
    entitlement.status, entitlement.reason = Entitlement.Status.REVOKED, "operator: abuse"
    entitlement.save()
    assert Certificate.objects.filter(pk=issued.pk, voided_at__isnull=True).exists()


def test_a_void_certificate_is_not_downloadable(student, issued, learner, course):
    entitlement = Entitlement.objects.get(user=learner, course=course)
    entitlement.status, entitlement.reason = Entitlement.Status.REVOKED, "refunded in full"
    entitlement.save()
    response = student.get(reverse("certificate_pdf", args=[issued.code]))
    assert response.status_code == 410 and response["Content-Type"].startswith("text/html")


# --- the name on it ------------------------------------------------------------------------


def rename(client, certificate, name):
    return client.post(reverse("certificate_name", args=[certificate.code]), {"name": name})


def test_the_owner_corrects_the_printed_name(student, issued):
    assert rename(student, issued, "  Augusta   Ada King ").status_code == 302
    issued.refresh_from_db()
    assert issued.name == "Augusta Ada King"


@pytest.mark.parametrize("name", ["", "A", "x" * 151, "Ada\x00", "Ada\x1b[31m"])
def test_a_bad_name_is_refused_and_changes_nothing(student, issued, name):
    assert rename(student, issued, name).status_code == 400
    issued.refresh_from_db()
    assert issued.name == "Ada Lovelace"


def test_another_learner_cannot_rename_it(issued, client, django_user_model):
    client.force_login(django_user_model.objects.create_user("eve", "eve@example.com", "pw"))
    assert rename(client, issued, "Eve").status_code == 404
    issued.refresh_from_db()
    assert issued.name == "Ada Lovelace"


def test_renaming_needs_the_csrf_token(issued, learner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(learner)
    assert rename(client, issued, "Eve").status_code == 403


def test_a_void_certificate_keeps_its_name(student, issued):
    Certificate.objects.filter(pk=issued.pk).update(voided_at="2026-01-01T00:00Z")
    assert rename(student, issued, "Someone Else").status_code == 409


def refund_in_full(learner, course):
    entitlement = Entitlement.objects.get(user=learner, course=course)
    entitlement.status, entitlement.reason = Entitlement.Status.REVOKED, "refunded in full"
    entitlement.save()


def test_a_learner_refunded_before_finishing_gets_no_certificate(student, learner, course):
    first, last = list(course.lessons().specific())
    progress.mark_complete(learner, first, course)
    refund_in_full(learner, course)
    progress.mark_complete(learner, last, course)  # a free preview: still open to them
    assert CourseCompletion.objects.filter(user=learner).exists()
    assert not Certificate.objects.exists()


def test_buying_again_and_completing_issues_a_fresh_certificate(issued, learner, course):
    refund_in_full(learner, course)
    entitle(learner, course)
    complete_all(learner, course)
    certificate = Certificate.objects.get()
    assert not certificate.is_void and certificate.code != issued.code


def test_my_courses_settles_a_course_whose_last_lessons_were_unpublished(student, learner, course):
    first, last = list(course.lessons().specific())
    progress.mark_complete(learner, last, course)
    first.unpublish()
    html = student.get(reverse("my_courses")).content.decode()
    assert "Download certificate (PDF)" in html
    assert Certificate.objects.filter(user=learner, course=course).exists()


def test_the_migration_gives_no_certificate_for_a_refunded_course(learner, course):
    import importlib

    from django.apps import apps

    entitle(learner, course)
    CourseCompletion.objects.create(user=learner, course=course)
    refund_in_full(learner, course)
    migration = importlib.import_module("learner.migrations.0003_certificates")
    migration.issue_for_past_completions(apps, None)
    assert not Certificate.objects.exists()


def test_the_migration_certifies_past_completions_on_the_day_they_happened(learner, course):
    import importlib

    from django.apps import apps

    entitle(learner, course)
    done = CourseCompletion.objects.create(user=learner, course=course)
    migration = importlib.import_module("learner.migrations.0003_certificates")
    migration.issue_for_past_completions(apps, None)
    assert Certificate.objects.get().issued_at == done.completed_at
