"""The instructors' report: each learner's progress in a course, filters, exports with
formula-safe cells, where learners stop, and who may see it."""

import csv
import io

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from openpyxl import load_workbook

from learner import progress
from learner.models import Certificate, QuizAttempt
from tests.helpers import entitle, make_course

URL = "/admin/reports/learners/"


@pytest.fixture
def three_lessons(catalog):
    return make_course(catalog, slug="report", title="Report course", lessons=3)


@pytest.fixture
def learners(three_lessons, django_user_model):
    """Ada finished, Bob stopped after the first lesson, Cy never started."""
    lessons = list(three_lessons.lessons().specific())
    people = {}
    for username, first, done in (("ada", "Ada", 3), ("bob", "Bob", 1), ("cy", "Cy", 0)):
        user = django_user_model.objects.create_user(
            username, f"{username}@example.com", "pw", first_name=first, last_name="Test"
        )
        entitle(user, three_lessons)
        for lesson in lessons[:done]:
            progress.mark_complete(user, lesson, three_lessons)
        people[username] = user
    return people


def rows(client, **params):
    response = client.get(URL, {"course": "", **params, "export": "csv"})
    assert response.status_code == 200
    content = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(content)))


def test_every_learner_of_the_course_is_listed_with_progress(
    superuser_client, three_lessons, learners
):
    listed = {r["E-mail"]: r for r in rows(superuser_client, course=three_lessons.pk)}
    assert set(listed) == {"ada@example.com", "bob@example.com", "cy@example.com"}
    assert (
        listed["ada@example.com"]["Lessons completed"],
        listed["ada@example.com"]["Lessons"],
    ) == ("3", "3")
    assert listed["bob@example.com"]["Progress (%)"] == "33"
    assert listed["cy@example.com"]["Last activity"] == ""
    assert (
        listed["ada@example.com"]["Certificate"]
        == Certificate.objects.get(user=learners["ada"]).code
    )
    assert listed["ada@example.com"]["Access"] == "active"


def test_the_status_filter_picks_finished_started_and_not_started(
    superuser_client, three_lessons, learners
):
    def emails(status):
        return {r["E-mail"] for r in rows(superuser_client, course=three_lessons.pk, status=status)}

    assert emails("completed") == {"ada@example.com"}
    assert emails("in_progress") == {"bob@example.com"}
    assert emails("not_started") == {"cy@example.com"}


def test_the_learner_filter_searches_name_and_address(superuser_client, three_lessons, learners):
    found = rows(superuser_client, course=three_lessons.pk, learner="bob")
    assert [r["E-mail"] for r in found] == ["bob@example.com"]


def test_best_quiz_scores_are_reported(superuser_client, three_lessons, learners):
    from tests.test_quizzes import QUIZ

    lesson = three_lessons.lessons().specific().last()
    lesson.body = [{"type": "quiz", "value": QUIZ}]
    lesson.save_revision().publish()
    quiz_id = lesson.specific_class.objects.get(pk=lesson.pk).body[0].id
    for score in (1, 2, 0):
        QuizAttempt.objects.create(
            user=learners["bob"],
            lesson=lesson,
            course=three_lessons,
            quiz_id=quiz_id,
            token=f"token-{score}-aaaaaaaaaaaaaaa",
            score=score,
            total=2,
            pass_mark=50,
            passed=score >= 1,
            answers={},
            results={},
        )
    bob = next(
        r for r in rows(superuser_client, course=three_lessons.pk) if r["E-mail"].startswith("bob")
    )
    assert bob["Best quiz scores"] == "Check your understanding: 2/2 passed"


def test_cells_a_spreadsheet_would_run_are_exported_as_text(
    superuser_client, three_lessons, django_user_model
):
    evil = django_user_model.objects.create_user(
        "evil", "evil@example.com", "pw", first_name='=HYPERLINK("http://x")', last_name=""
    )
    entitle(evil, three_lessons)
    (row,) = rows(superuser_client, course=three_lessons.pk)
    assert row["Name"].startswith("'=")
    response = superuser_client.get(URL, {"course": three_lessons.pk, "export": "xlsx"})
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    cells = [c.value for c in next(sheet.iter_rows(min_row=2, max_row=2))]
    assert '\'=HYPERLINK("http://x")' in cells


def test_the_page_shows_where_learners_stop(superuser_client, three_lessons, learners):
    html = superuser_client.get(URL, {"course": three_lessons.pk}).content.decode()
    assert "Where learners stop" in html and "3 learners" in html
    # Lesson 1: Ada and Bob completed it (67 %); lessons 2 and 3: Ada only (33 %).
    assert html.count('value="67"') == 1 and html.count('value="33"') >= 2


def test_without_a_course_chosen_the_first_by_title_is_shown(
    superuser_client, three_lessons, learners
):
    assert "Report course" in superuser_client.get(URL).content.decode()


def test_queries_do_not_grow_with_learners(
    superuser_client, three_lessons, learners, django_user_model, django_assert_max_num_queries
):
    superuser_client.get(URL, {"course": three_lessons.pk})
    with django_assert_max_num_queries(40) as few:
        superuser_client.get(URL, {"course": three_lessons.pk})
    for i in range(10):
        user = django_user_model.objects.create_user(f"more{i}", f"more{i}@example.com", "pw")
        entitle(user, three_lessons)
    with django_assert_max_num_queries(len(few.captured_queries)):
        superuser_client.get(URL, {"course": three_lessons.pk})


def test_a_forged_course_falls_back_to_the_first_course(superuser_client, three_lessons, learners):
    response = superuser_client.get(URL, {"course": "999999"})
    assert response.status_code == 200


def test_someone_without_the_permission_is_refused(
    client, three_lessons, learners, django_user_model
):
    editor = django_user_model.objects.create_user("ed", "ed@example.com", "pw")
    group = Group.objects.create(name="Editors only")
    group.permissions.add(Permission.objects.get(codename="access_admin"))
    editor.groups.add(group)
    client.force_login(editor)
    assert client.get(URL).status_code in (302, 403)
    assert "ada@example.com" not in client.get(URL, follow=True).content.decode()


def test_an_instructor_with_the_permission_sees_it(
    client, three_lessons, learners, django_user_model
):
    instructor = django_user_model.objects.create_user("ins", "ins@example.com", "pw")
    group = Group.objects.create(name="Instructors")
    group.permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="view_lessonprogress"),
    )
    instructor.groups.add(group)
    client.force_login(instructor)
    assert "ada@example.com" in client.get(URL).content.decode()


def test_a_learner_cannot_open_the_report(three_lessons, learners):
    client = Client()
    client.force_login(learners["ada"])
    response = client.get(URL)
    assert response.status_code == 302 and "ada@example.com" not in response.content.decode()


def test_the_report_permission_can_be_given_to_a_group_in_the_admin(db):
    from wagtail.users.forms import GroupForm

    offered = GroupForm().fields["permissions"].queryset
    assert offered.filter(
        content_type__app_label="learner", codename="view_lessonprogress"
    ).exists()
