"""The house has floors: base ← courses ← commerce ← learner. No import runs back up."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ABOVE = {
    "base": {"courses", "commerce", "learner"},
    "courses": {"commerce", "learner"},
    "commerce": {"learner"},
    "learner": set(),
}


def imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("app", sorted(ABOVE))
def test_an_app_imports_nothing_from_the_apps_above_it(app):
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / app).rglob("*.py"))
        for name in imports(path)
        if name.split(".")[0] in ABOVE[app]
    ]
    assert wrong == []


def test_course_templates_know_no_money_and_no_learner():
    """The buy box, downloads, video tokens and progress come through slots the apps above
    fill (courses.templatetags.course_tags.slot), not through their tags or URLs."""
    wrong = [
        f"{path.relative_to(ROOT)}: {word}"
        for path in sorted((ROOT / "templates" / "courses").rglob("*.html"))
        for word in ("commerce_tags", "learner_tags", "{% url")
        if word in path.read_text()
    ]
    assert wrong == []
