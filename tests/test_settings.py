from pathlib import Path

from tests.helpers import postgres_only, settings_in_fresh_process

ROOT = Path(__file__).resolve().parent.parent


def load_settings(**env):
    """Import the real settings in a fresh interpreter with exactly this environment."""
    return settings_in_fresh_process("print(settings.SECURE_SSL_REDIRECT, settings.DEBUG)", **env)


def test_production_without_secret_key_refuses_to_start():
    result = load_settings(DEBUG="0")
    assert result.returncode != 0
    assert "unsafe SECRET_KEY" in result.stderr


def test_production_with_the_development_key_refuses_to_start():
    result = load_settings(DEBUG="0", SECRET_KEY="django-insecure-" + "x" * 60)
    assert result.returncode != 0
    assert "unsafe SECRET_KEY" in result.stderr


def test_production_with_a_short_key_refuses_to_start():
    result = load_settings(DEBUG="0", SECRET_KEY="short-but-secret")
    assert result.returncode != 0


def test_production_with_a_strong_key_starts_and_redirects_to_https():
    result = load_settings(DEBUG="0", SECRET_KEY="p8Vq2#xL7mN3wR9tY4bZc6Hd1Fg5Ks0Ae!Uj" * 2)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]


def test_local_development_runs_with_no_configuration():
    result = load_settings(DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


@postgres_only
def test_production_settings_on_postgresql_pass_the_system_checks():
    """Django 6 checks that the PostgreSQL search index's fields have their app."""
    import os

    result = settings_in_fresh_process(
        "from django.core.management import call_command; "
        "call_command('check', '--fail-level', 'ERROR')",
        DEBUG="0",
        SECRET_KEY="settings-check-" + "x9Yq2vX7pLm3Nw9RtY4bZc6Hd1Fg5Ks0Ae" * 2,
        ALLOWED_HOSTS="courses.example.com",
        SITE_URL="https://courses.example.com",
        DATABASE_URL=os.environ["DATABASE_URL"],
        STRIPE_SECRET_KEY="sk_test_check",
        STRIPE_WEBHOOK_SECRET="whsec_check",
    )
    assert result.returncode == 0, result.stderr[-2000:]


@postgres_only
def test_postgresql_connections_never_jit_compile_a_query(db):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)


def test_behind_pgbouncer_no_startup_option_is_sent():
    """PgBouncer refuses unknown startup options; there the role carries jit=off."""
    expr = "print(settings.DATABASES['default'].get('OPTIONS', {}).get('options'))"
    url = "postgres://app@127.0.0.1:6432/app"
    direct = settings_in_fresh_process(expr, DEBUG="1", DATABASE_URL=url)
    pooled = settings_in_fresh_process(
        expr, DEBUG="1", DATABASE_URL=url, DB_TRANSACTION_POOLING="1"
    )
    assert direct.stdout.strip() == "-c jit=off", direct.stderr
    assert pooled.stdout.strip() == "None", pooled.stderr
