"""Shared arguments for grant_access and revoke_access."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from courses.models import CoursePage


def add_arguments(parser):
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="Learner e-mail (an account's, or a guest's).")
    who.add_argument("--user", help="Username or user id.")
    parser.add_argument("--course", required=True, help="Course page id or slug.")
    parser.add_argument("--reason", required=True, help="Why (kept in the audit trail).")
    parser.add_argument("--dry-run", action="store_true")


def resolve(options):
    course_ref = options["course"]
    courses = (
        CoursePage.objects.filter(pk=int(course_ref))
        if course_ref.isdigit()
        else (CoursePage.objects.filter(slug=course_ref))
    )
    course = courses.first()
    if course is None:
        raise CommandError(f"No course {course_ref!r}.")
    if not options["reason"].strip():
        raise CommandError("--reason must not be empty.")
    User = get_user_model()
    user, email = None, None
    if options.get("user"):
        ref = options["user"]
        user = (
            User.objects.filter(pk=int(ref)) if ref.isdigit() else User.objects.filter(username=ref)
        ).first()
        if user is None:
            raise CommandError(f"No user {ref!r}.")
    else:
        email = options["email"].strip().lower()
        if "@" not in email:
            raise CommandError(f"{options['email']!r} is not an e-mail address.")
        user = User.objects.filter(email__iexact=email).first()
    return course, user, email
