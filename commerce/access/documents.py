"""Who may fetch a Wagtail document. Private by default: a file is public only while a live
page anyone may read uses it; otherwise it follows the courses whose lessons (live, draft or
any past revision) used it."""

from django.contrib.auth.models import AnonymousUser
from django.contrib.contenttypes.models import ContentType
from wagtail.documents import get_document_model
from wagtail.models import Page, ReferenceIndex

from commerce.access import has_course_access
from commerce.access.release import not_open_until
from commerce.models import LessonDocument
from courses.models import CoursePage, LessonPage


def document_ids_in(obj):
    """Documents an object (a page, or a page rebuilt from a revision) refers to."""
    document_type = ContentType.objects.get_for_model(get_document_model())
    return {
        int(object_id)
        for type_id, object_id, *_ in ReferenceIndex._extract_references_from_object(obj)
        if type_id == document_type.pk and str(object_id).isdigit()
    }


def record_revision(revision):
    """Remember every document a lesson revision uses (called for each new revision)."""
    if not issubclass(revision.content_type.model_class() or object, LessonPage):
        return
    ids = document_ids_in(revision.as_object())
    existing = set(get_document_model().objects.filter(pk__in=ids).values_list("pk", flat=True))
    LessonDocument.objects.bulk_create(
        [LessonDocument(lesson_id=int(revision.object_id), document_id=i) for i in existing],
        ignore_conflicts=True,
    )


def record_all_revisions():
    """Backfill for revisions saved before the index existed."""
    from wagtail.models import Revision

    lesson_type = ContentType.objects.get_for_model(LessonPage)
    for revision in Revision.objects.filter(content_type=lesson_type).iterator():
        if LessonPage.objects.filter(pk=revision.object_id).exists():
            record_revision(revision)


def _page_ids_using(document):
    page_type = ContentType.objects.get_for_model(Page)
    ids = (
        ReferenceIndex.get_references_to(document)
        .filter(base_content_type=page_type)
        .values_list("object_id", flat=True)
    )
    return {int(i) for i in ids if i.isdigit()}


def _course_of(lesson):
    return CoursePage.objects.ancestor_of(lesson).first()


def is_public(page_ids):
    """Used by a live page anyone may read: a non-lesson page, a free preview, a free course."""
    if not page_ids:
        return False
    readable = Page.objects.live().public().filter(pk__in=page_ids)
    lesson_type = ContentType.objects.get_for_model(LessonPage)
    if readable.exclude(content_type=lesson_type).exists():
        return True
    for lesson in LessonPage.objects.live().public().filter(pk__in=page_ids):
        course = _course_of(lesson)
        if lesson.is_free_preview or (
            course
            and course.live
            and course.price_amount == 0
            and not_open_until(AnonymousUser(), lesson, course) is None
        ):
            return True
    return False


def lessons_using(document, page_ids=None):
    """Every lesson whose current content or any revision uses the document, live or not."""
    page_ids = _page_ids_using(document) if page_ids is None else page_ids
    ids = page_ids | set(
        LessonDocument.objects.filter(document=document).values_list("lesson_id", flat=True)
    )
    return list(LessonPage.objects.filter(pk__in=ids).order_by("-live", "path"))


def _opens(user, course):
    if course is None:
        return False
    if course.price_amount == 0:
        return course.live
    return has_course_access(user, course)


def may_fetch(user, document):
    """(allowed, a live lesson to offer when refused, or None)."""
    if user.is_authenticated and user.has_perm("wagtailadmin.access_admin"):
        return True, None
    page_ids = _page_ids_using(document)
    if is_public(page_ids):
        return True, None
    offer = None
    for lesson in lessons_using(document, page_ids):
        course = _course_of(lesson)
        if _opens(user, course) and not_open_until(user, lesson, course) is None:
            return True, None
        if offer is None and lesson.live and course is not None and course.live:
            offer = (lesson, course)
    return False, offer
