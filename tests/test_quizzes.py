"""Quizzes in lessons: graded on the server, the key never sent, attempts kept, a required
quiz passed before the lesson completes, and bad input refused without a trace."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from courses.models import LessonPage
from learner import quizzes
from learner.models import LessonProgress, QuizAttempt
from tests.helpers import entitle, postgres_only, run_together

QUIZ = {
    "title": "Check your understanding",
    "pass_mark": 50,
    "required": True,
    "questions": [
        {
            "prompt": "What does len([1, 2]) return?",
            "multiple": False,
            "choices": [
                {"text": "Two", "correct": True},
                {"text": "One", "correct": False},
                {"text": "An error", "correct": False},
            ],
            "explanation": "<p>len counts the items.</p>",
        },
        {
            "prompt": "Which are immutable?",
            "multiple": True,
            "choices": [
                {"text": "tuple", "correct": True},
                {"text": "str", "correct": True},
                {"text": "list", "correct": False},
            ],
            "explanation": "<p>Lists change in place.</p>",
        },
    ],
}


@pytest.fixture
def quiz_lesson(paid_lesson):
    paid_lesson.body = [
        {"type": "text", "value": "<p>Secret body</p>"},
        {"type": "quiz", "value": QUIZ},
    ]
    paid_lesson.save_revision().publish()
    return LessonPage.objects.get(pk=paid_lesson.pk)


@pytest.fixture
def quiz(quiz_lesson):
    return quizzes.quizzes_in(quiz_lesson)[0]


@pytest.fixture
def student(learner, course, client):
    entitle(learner, course)
    client.force_login(learner)
    return client


def form(quiz, picks, token=None):
    """Answers by choice text: {question number: [texts]}."""
    data = {"token": token or quizzes.new_token()}
    for number, texts in picks.items():
        question = quiz.questions[number - 1]
        data[f"q-{question.id}"] = [c.id for c in question.choices if c.text in texts]
    return data


def submit(client, lesson, quiz, data):
    return client.post(reverse("submit_quiz", args=[lesson.pk, quiz.id]), data)


ALL_RIGHT = {1: ["Two"], 2: ["tuple", "str"]}
HALF_RIGHT = {1: ["Two"], 2: ["tuple"]}
NONE_RIGHT = {1: ["One"], 2: ["list"]}


def test_the_page_shows_questions_and_choices_but_never_which_are_right(student, quiz_lesson):
    html = student.get(quiz_lesson.url).content.decode()
    assert "What does len([1, 2]) return?" in html and "An error" in html
    assert "correct" not in html.lower()
    assert "len counts the items" not in html  # explanations come after an answer
    assert 'type="radio"' in html and 'type="checkbox"' in html


def test_the_grade_is_the_share_of_questions_answered_exactly_right(student, quiz_lesson, quiz):
    response = submit(student, quiz_lesson, quiz, form(quiz, HALF_RIGHT))
    assert response.status_code == 302 and response["Location"].endswith(f"#quiz-{quiz.id}")
    attempt = QuizAttempt.objects.get()
    assert (attempt.score, attempt.total, attempt.passed) == (1, 2, True)  # 50 % ≥ 50 %


def test_a_multiple_choice_question_needs_every_right_choice_and_no_wrong_one(quiz):
    from django.http import QueryDict

    data = QueryDict(mutable=True)
    for texts in (["tuple"], ["tuple", "str", "list"]):
        data.setlist(f"q-{quiz.questions[0].id}", [quiz.questions[0].choices[0].id])
        question = quiz.questions[1]
        data.setlist(f"q-{question.id}", [c.id for c in question.choices if c.text in texts])
        assert quizzes.grade(quiz, data)[2] == 1


def test_below_the_pass_mark_is_not_passed(student, quiz_lesson, quiz):
    submit(student, quiz_lesson, quiz, form(quiz, NONE_RIGHT))
    assert QuizAttempt.objects.get().passed is False


def test_after_an_attempt_the_lesson_shows_the_score_and_explanations(student, quiz_lesson, quiz):
    submit(student, quiz_lesson, quiz, form(quiz, HALF_RIGHT))
    html = student.get(quiz_lesson.url).content.decode()
    assert "1 of 2 right (50%)" in html and "passed" in html
    assert "len counts the items" in html and "Lists change in place" in html
    assert "Not quite" in html and "Right." in html


def test_every_attempt_is_kept_with_its_score_and_time(student, quiz_lesson, quiz):
    submit(student, quiz_lesson, quiz, form(quiz, NONE_RIGHT))
    submit(student, quiz_lesson, quiz, form(quiz, ALL_RIGHT))
    scores = list(QuizAttempt.objects.order_by("submitted_at").values_list("score", "passed"))
    assert scores == [(0, False), (2, True)]
    assert all(a.submitted_at for a in QuizAttempt.objects.all())


def test_a_required_quiz_must_be_passed_before_the_lesson_completes(
    student, quiz_lesson, quiz, learner
):
    complete = reverse("complete_lesson", args=[quiz_lesson.pk])
    response = student.post(complete, follow=True)
    assert "Pass “Check your understanding”" in response.content.decode()
    assert not LessonProgress.objects.filter(status="completed").exists()
    submit(student, quiz_lesson, quiz, form(quiz, ALL_RIGHT))
    student.post(complete)
    assert LessonProgress.objects.get(user=learner, lesson=quiz_lesson).status == "completed"


def test_an_optional_quiz_does_not_hold_back_completion(student, paid_lesson, learner):
    paid_lesson.body = [{"type": "quiz", "value": {**QUIZ, "required": False}}]
    paid_lesson.save_revision().publish()
    student.post(reverse("complete_lesson", args=[paid_lesson.pk]))
    assert LessonProgress.objects.get(user=learner).status == "completed"


# --- bad input: a clear error, nothing stored ----------------------------------------------


def test_a_double_submission_is_one_attempt(student, quiz_lesson, quiz):
    data = form(quiz, ALL_RIGHT)
    assert submit(student, quiz_lesson, quiz, data).status_code == 302
    again = submit(student, quiz_lesson, quiz, data)
    assert again.status_code == 409 and b"already submitted" in again.content
    assert QuizAttempt.objects.count() == 1


@postgres_only
def test_the_same_form_sent_twice_at_once_is_one_attempt(
    transactional_db, course, learner, quiz_lesson, quiz
):
    entitle(learner, course)
    data = form(quiz, ALL_RIGHT)

    def send():
        client = Client()
        client.force_login(learner)
        return submit(client, quiz_lesson, quiz, data).status_code

    assert sorted(run_together(send, send)) == [302, 409]
    assert QuizAttempt.objects.count() == 1


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d, q: d.update({"q-00000000-0000-0000-0000-000000000000": "x"}), "does not have"),
        (lambda d, q: d.update({f"q-{q.questions[0].id}": "forged-choice"}), "does not have"),
        (lambda d, q: d.pop(f"q-{q.questions[1].id}"), "Answer every question"),
        (
            lambda d, q: d.update(
                {f"q-{q.questions[0].id}": [c.id for c in q.questions[0].choices]}
            ),
            "Choose one answer",
        ),
        (lambda d, q: d.update({"token": "short"}), "reload the lesson"),
        (lambda d, q: d.pop("token"), "reload the lesson"),
    ],
    ids=[
        "unknown question",
        "unknown choice",
        "unanswered",
        "two on single",
        "bad token",
        "no token",
    ],
)
def test_malformed_answers_are_refused_and_change_nothing(
    student, quiz_lesson, quiz, change, message
):
    data = form(quiz, ALL_RIGHT)
    change(data, quiz)
    response = submit(student, quiz_lesson, quiz, data)
    assert response.status_code == 400 and message in response.content.decode()
    assert not QuizAttempt.objects.exists()


def test_a_quiz_the_lesson_does_not_have_is_404(student, quiz_lesson, quiz):
    response = student.post(
        reverse("submit_quiz", args=[quiz_lesson.pk, "00000000-0000-0000-0000-000000000000"]),
        form(quiz, ALL_RIGHT),
    )
    assert response.status_code == 404


def test_answers_to_a_quiz_the_learner_cannot_open_are_refused(
    client, quiz_lesson, quiz, django_user_model
):
    stranger = django_user_model.objects.create_user("s", "s@example.com", "pw")
    client.force_login(stranger)
    response = submit(client, quiz_lesson, quiz, form(quiz, ALL_RIGHT))
    assert response.status_code == 403 and b"Secret body" not in response.content
    assert not QuizAttempt.objects.exists()


def test_a_visitor_is_sent_to_log_in(client, quiz_lesson, quiz):
    response = submit(client, quiz_lesson, quiz, form(quiz, ALL_RIGHT))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not QuizAttempt.objects.exists()


def test_answers_without_the_csrf_token_are_refused(learner, course, quiz_lesson, quiz):
    entitle(learner, course)
    client = Client(enforce_csrf_checks=True)
    client.force_login(learner)
    assert submit(client, quiz_lesson, quiz, form(quiz, ALL_RIGHT)).status_code == 403
    assert not QuizAttempt.objects.exists()


def test_reading_a_quiz_is_not_allowed_by_get(student, quiz_lesson, quiz):
    response = student.get(reverse("submit_quiz", args=[quiz_lesson.pk, quiz.id]))
    assert response.status_code == 405


def test_the_form_carries_a_fresh_one_time_token(student, quiz_lesson):
    first = re.search(
        r'name="token" value="([^"]+)"', student.get(quiz_lesson.url).content.decode()
    )
    second = re.search(
        r'name="token" value="([^"]+)"', student.get(quiz_lesson.url).content.decode()
    )
    assert first and second and first.group(1) != second.group(1)


def test_an_editor_cannot_save_a_question_without_a_right_choice():
    from django.core.exceptions import ValidationError

    from courses.blocks import QuizQuestionBlock

    block = QuizQuestionBlock()
    value = block.to_python(
        {
            "prompt": "?",
            "multiple": False,
            "choices": [{"text": "a", "correct": False}, {"text": "b", "correct": False}],
        }
    )
    with pytest.raises(ValidationError):
        block.clean(value)


def test_a_quiz_in_a_lesson_made_private_cannot_be_answered(student, quiz_lesson, quiz):
    from django.contrib.auth.models import Group
    from wagtail.models import PageViewRestriction

    restriction = PageViewRestriction.objects.create(
        page=quiz_lesson, restriction_type=PageViewRestriction.GROUPS
    )
    restriction.groups.add(Group.objects.create(name="Insiders"))
    assert submit(student, quiz_lesson, quiz, form(quiz, ALL_RIGHT)).status_code == 403
    assert not QuizAttempt.objects.exists()
