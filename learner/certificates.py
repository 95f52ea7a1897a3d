"""Certificates of completion: issued once when a course is completed, printed as a PDF
(fpdf2), confirmed on a public page by their code, void when the money came back in full."""

import re
import secrets
import unicodedata
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from fpdf import FPDF

from learner.locks import take_turn
from learner.models import Certificate

# Crockford's base32 without I, L, O, U: read aloud or typed from paper without confusion.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")
# A TrueType font that can print any learner's name; Debian's DejaVu by default.
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
)


def new_code():
    raw = "".join(secrets.choice(ALPHABET) for _ in range(12))  # 60 bits
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def name_of(user):
    """The name to print: the account's full name, else the e-mail address's local part."""
    return (user.get_full_name() or user.email.split("@")[0] or user.get_username())[:150]


def issue(user, course):
    """The learner's certificate for the course: created the first time, issued afresh (new
    code and date) when the one they had was voided and they completed the course again.
    Inside the caller's transaction, which holds the learner's lock (locks.take_turn)."""
    existing = Certificate.objects.filter(user=user, course=course).first()
    if existing is not None and not existing.is_void:
        return existing
    certificate = existing or Certificate(user=user, course=course)
    certificate.name = name_of(user)
    certificate.course_title = course.title[:255]
    certificate.issued_at = timezone.now()
    certificate.voided_at, certificate.void_reason = None, ""
    for _ in range(5):  # a code already taken (60 bits: never, in practice) is drawn again
        certificate.code = new_code()
        try:
            with transaction.atomic():
                certificate.save()
                return certificate
        except IntegrityError:
            mine = Certificate.objects.filter(user=user, course=course).first()
            if mine is not None and not mine.is_void:
                return mine
    raise RuntimeError("could not draw a free certificate code")


def void_for_returned_money(entitlement):
    """A full refund or a lost dispute voids the learner's certificate for that course; other
    ends of access (expiry, an operator's revocation) leave it valid."""
    if entitlement.user_id is None:
        return 0
    take_turn(entitlement.user)  # a certificate being issued right now is voided too
    return Certificate.objects.filter(
        user_id=entitlement.user_id, course_id=entitlement.course_id, voided_at__isnull=True
    ).update(voided_at=timezone.now(), void_reason=entitlement.reason[:100])


def verify_url(certificate):
    return settings.SITE_URL + reverse("certificate", args=[certificate.code])


def _font(pdf):
    path = settings.CERTIFICATE_FONT or next((p for p in FONT_CANDIDATES if Path(p).is_file()), "")
    if path:
        pdf.add_font("Body", fname=path)
        return "Body", str
    # PDF's built-in Helvetica knows Latin-1 only: strip accents, then replace the rest.
    return "Helvetica", _latin1


def _latin1(text):
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return plain.encode("latin-1", "replace").decode("latin-1")


def pdf(certificate):
    """The certificate as a one-page A4 landscape PDF."""
    doc = FPDF(orientation="landscape", format="A4")
    doc.set_title(f"Certificate: {certificate.course_title}")
    doc.set_author(settings.SITE_NAME)
    doc.set_auto_page_break(False)
    doc.add_page()
    family, text = _font(doc)
    width = doc.w - 40
    doc.set_draw_color(31, 95, 191)
    doc.set_line_width(1.2)
    doc.rect(12, 12, doc.w - 24, doc.h - 24)
    issued = timezone.localtime(certificate.issued_at).strftime("%-d %B %Y")
    address = verify_url(certificate)
    # (top, font size, line height, text), centred on the page.
    lines = [
        (40, 16, 10, settings.SITE_NAME),
        (58, 32, 16, "Certificate of completion"),
        (84, 14, 8, "This certifies that"),
        (96, 28, 14, certificate.name),
        (118, 14, 8, "has completed the course"),
        (130, 22, 11, certificate.course_title),
        (160, 12, 7, f"Issued on {issued}"),
        (175, 10, 6, f"Verification code {certificate.code}"),
    ]
    for top, size, height, words in lines:
        doc.set_xy(20, top)
        doc.set_font(family, size=size)
        doc.multi_cell(width, height, text(words), align="C")
    doc.set_xy(20, 182)
    doc.cell(width, 6, text(address), align="C", link=address)
    return bytes(doc.output())
