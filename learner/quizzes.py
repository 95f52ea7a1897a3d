"""Quizzes in lessons: read from the lesson's body, graded here, kept as attempts.

The answer key lives only in the page's content; the page shows prompts and choices by their
block ids, and the learner's answers come back as those ids.
"""

import re
import secrets
from dataclasses import dataclass
from types import SimpleNamespace

from django.db import IntegrityError, transaction

from learner.locks import take_turn
from learner.models import LessonProgress, QuizAttempt

TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
FIELD = "q-"


class InvalidAnswers(Exception):  # noqa: N818 - reads as a reason
    pass


class AlreadySubmitted(Exception):  # noqa: N818 - reads as a reason
    pass


@dataclass(frozen=True)
class Choice:
    id: str
    text: str
    correct: bool


@dataclass(frozen=True)
class Question:
    id: str
    prompt: str
    multiple: bool
    choices: tuple[Choice, ...]
    explanation: object  # RichText

    @property
    def right(self):
        return frozenset(c.id for c in self.choices if c.correct)


@dataclass(frozen=True)
class Quiz:
    id: str
    title: str
    pass_mark: int
    required: bool
    questions: tuple[Question, ...]

    def passes(self, score, total):
        return total > 0 and 100 * score >= self.pass_mark * total


def from_block(child):
    """A quiz from its StreamField child (the lesson body's block), ids included."""
    value = child.value
    questions = []
    for position, item in enumerate(value["questions"].bound_blocks):
        question = item.value
        choices = tuple(
            Choice(id=c.id or str(i), text=c.value["text"], correct=bool(c.value["correct"]))
            for i, c in enumerate(question["choices"].bound_blocks)
        )
        questions.append(
            Question(
                id=item.id or str(position),
                prompt=question["prompt"],
                multiple=bool(question["multiple"]),
                choices=choices,
                explanation=question["explanation"],
            )
        )
    return Quiz(
        id=child.id,
        title=value["title"],
        pass_mark=value["pass_mark"],
        required=bool(value["required"]),
        questions=tuple(questions),
    )


def quizzes_in(lesson):
    return [from_block(child) for child in lesson.body if child.block_type == "quiz"]


def find(lesson, quiz_id):
    return next((quiz for quiz in quizzes_in(lesson) if quiz.id == quiz_id), None)


def new_token():
    return secrets.token_urlsafe(24)


def grade(quiz, data):
    """({question id: [choice ids]}, {question id: right?}, score) from a submitted form;
    InvalidAnswers names what is wrong with it."""
    by_id = {q.id: q for q in quiz.questions}
    unknown = [
        k[len(FIELD) :] for k in data if k.startswith(FIELD) and k[len(FIELD) :] not in by_id
    ]
    if unknown:
        raise InvalidAnswers("These answers are for questions this quiz does not have.")
    answers, results = {}, {}
    for question in quiz.questions:
        chosen = data.getlist(FIELD + question.id)
        if not chosen:
            raise InvalidAnswers("Answer every question before you submit.")
        valid = {c.id for c in question.choices}
        if any(choice not in valid for choice in chosen) or len(set(chosen)) != len(chosen):
            raise InvalidAnswers("An answer names a choice its question does not have.")
        if not question.multiple and len(chosen) != 1:
            raise InvalidAnswers("Choose one answer for each single-choice question.")
        answers[question.id] = sorted(chosen)
        results[question.id] = frozenset(chosen) == question.right
    return answers, results, sum(results.values())


def submit(user, lesson, course, quiz, data):
    """Grade and store one attempt. The caller has checked the learner may open the lesson."""
    token = data.get("token", "")
    if not TOKEN.match(token):
        raise InvalidAnswers("This form is incomplete: reload the lesson and answer again.")
    answers, results, score = grade(quiz, data)
    total = len(quiz.questions)
    with transaction.atomic():
        take_turn(user)
        try:
            with transaction.atomic():
                attempt = QuizAttempt.objects.create(
                    user=user,
                    lesson=lesson,
                    course=course,
                    quiz_id=quiz.id,
                    token=token,
                    score=score,
                    total=total,
                    pass_mark=quiz.pass_mark,
                    passed=quiz.passes(score, total),
                    answers=answers,
                    results=results,
                )
        except IntegrityError as exc:
            raise AlreadySubmitted("These answers were already submitted.") from exc
        row, _ = LessonProgress.objects.get_or_create(
            user=user, lesson=lesson, defaults={"course": course}
        )
        row.quizzes = {**row.quizzes, quiz.id: shown_attempt(attempt)}
        row.save(update_fields=["quizzes"])
    return attempt


def shown_attempt(attempt):
    """What the lesson page shows of the latest attempt, kept on the learner's progress row
    so the page reads it with the rest of their progress."""
    return {
        "score": attempt.score,
        "total": attempt.total,
        "passed": attempt.passed,
        "answers": attempt.answers,
        "results": attempt.results,
    }


def latest_shown(stored):
    """The latest attempt as the page uses it, from LessonProgress.quizzes[quiz id]."""
    if not stored:
        return None
    percent = round(100 * stored["score"] / stored["total"]) if stored["total"] else 0
    return SimpleNamespace(**stored, percent=percent)


def required_not_passed(user, lesson):
    """Titles of the lesson's required quizzes this learner has not passed yet."""
    required = [quiz for quiz in quizzes_in(lesson) if quiz.required]
    if not required:
        return []
    passed = set(
        QuizAttempt.objects.filter(
            user=user, lesson=lesson, passed=True, quiz_id__in=[q.id for q in required]
        ).values_list("quiz_id", flat=True)
    )
    return [quiz.title for quiz in required if quiz.id not in passed]


def as_shown(quiz, attempt):
    """What the page may show of a quiz: prompts and choices, with the learner's own last
    answers and, once answered, whether each was right and why. Never the key itself."""
    answered = attempt.answers if attempt else {}
    results = attempt.results if attempt else {}
    return [
        {
            "id": question.id,
            "number": number,
            "prompt": question.prompt,
            "multiple": question.multiple,
            "choices": [
                {"id": c.id, "text": c.text, "chosen": c.id in answered.get(question.id, [])}
                for c in question.choices
            ],
            "right": results.get(question.id),
            "explanation": question.explanation if question.id in results else None,
        }
        for number, question in enumerate(quiz.questions, start=1)
    ]
