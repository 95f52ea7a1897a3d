"""A deploy installs requirements.lock alone; development installs requirements-dev.lock.

The two locks agree on every production pin, the development tools stay out of production, and
everything the shipped apps import comes from the production lock. `.ci/prod-deps` proves the
same by running the site from a venv built from requirements.lock alone.
"""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ["base", "config", "courses", "commerce", "learner"]
DEV_TOOLS = {
    "pytest",
    "pytest-django",
    "hypothesis",
    "ruff",
    "playwright",
    "moto",
    "flask",
    "mypy",
    "django-stubs",
    "pre-commit",
}


def normalized(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock):
    found = {}
    for line in (ROOT / lock).read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split("==", 1)
            found[normalized(name.split("[")[0])] = version.strip()
    return found


def third_party_imports():
    local = set(SHIPPED) | {"tests", "devtools", "bench"}
    for app in SHIPPED:
        for path in sorted((ROOT / app).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in local and top not in sys.stdlib_module_names:
                        yield path.relative_to(ROOT), top


def dotted_paths_in_settings():
    """The modules the settings name by string: apps, middleware, back-ends."""
    yield from settings.INSTALLED_APPS
    yield from settings.MIDDLEWARE
    yield from settings.AUTHENTICATION_BACKENDS
    yield from (storage["BACKEND"] for storage in settings.STORAGES.values())
    yield from (engine["BACKEND"] for engine in settings.TEMPLATES)
    yield settings.DATABASES["default"]["ENGINE"]


def test_the_development_lock_keeps_every_production_pin():
    production, development = pins("requirements.lock"), pins("requirements-dev.lock")
    differ = {
        name: (version, development.get(name))
        for name, version in production.items()
        if development.get(name) != version
    }
    assert production
    assert differ == {}


def test_development_tools_are_not_in_the_production_lock():
    assert DEV_TOOLS & set(pins("requirements.lock")) == set()
    assert DEV_TOOLS - set(pins("requirements-dev.lock")) == set()


def test_everything_the_site_imports_comes_from_the_production_lock():
    production = set(pins("requirements.lock"))
    providers = packages_distributions()
    modules = {(str(path), top) for path, top in third_party_imports()}
    modules |= {("config/settings.py", path.split(".")[0]) for path in dotted_paths_in_settings()}
    missing = sorted(
        f"{where} imports {top} ({', '.join(providers.get(top, ['no distribution']))})"
        for where, top in modules
        if top not in SHIPPED
        and not any(normalized(dist) in production for dist in providers.get(top, []))
    )
    assert missing == []


def test_the_pre_commit_ruff_is_the_locked_ruff():
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    hooked = set(re.findall(r"ruff==([\w.]+)", config))
    assert hooked == {pins("requirements-dev.lock")["ruff"]}
