import os
import subprocess
import sys

STRONG_KEY = "k3y-" + "".join(chr(ord("a") + i % 26) for i in range(60))


def settings_load(**env):
    environment = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    environment.update(env, DJANGO_SETTINGS_MODULE="dashboard.settings")
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_production_run_without_secret_key_refuses_to_start():
    result = settings_load(CONFWATCH_ENV="production", ALLOWED_HOSTS="example.com")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_a_production_run_with_its_settings_starts():
    result = settings_load(
        CONFWATCH_ENV="production", ALLOWED_HOSTS="example.com", SECRET_KEY=STRONG_KEY
    )
    assert result.returncode == 0, result.stderr


def test_a_production_run_refuses_a_weak_secret_key():
    for weak in ("short", "x" * 60):
        result = settings_load(
            CONFWATCH_ENV="production", ALLOWED_HOSTS="example.com", SECRET_KEY=weak
        )
        assert result.returncode != 0
        assert "SECRET_KEY is too weak" in result.stderr


def test_a_boolean_setting_refuses_a_vague_value():
    result = settings_load(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_a_non_postgres_database_is_refused():
    result = settings_load(DATABASE_URL="sqlite:///tmp/x.db")
    assert result.returncode != 0
    assert "must point at PostgreSQL" in result.stderr
