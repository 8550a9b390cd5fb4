import os
import subprocess
import sys

import pytest

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


def test_a_production_run_refuses_debug():
    result = settings_load(
        CONFWATCH_ENV="production", ALLOWED_HOSTS="example.com", SECRET_KEY=STRONG_KEY, DEBUG="true"
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: DEBUG=true is refused in production" in result.stderr


@pytest.mark.parametrize("hosts", ["*", "confwatch.example.com,*"])
def test_a_production_run_refuses_any_host(hosts):
    result = settings_load(CONFWATCH_ENV="production", ALLOWED_HOSTS=hosts, SECRET_KEY=STRONG_KEY)
    assert result.returncode != 0
    assert "ImproperlyConfigured: ALLOWED_HOSTS='*' is refused in production" in result.stderr


def test_development_still_accepts_debug_and_any_host():
    result = settings_load(DEBUG="true", ALLOWED_HOSTS="*")
    assert result.returncode == 0, result.stderr


def test_a_boolean_setting_refuses_a_vague_value():
    result = settings_load(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_a_non_postgres_database_is_refused():
    result = settings_load(DATABASE_URL="sqlite:///tmp/x.db")
    assert result.returncode != 0
    assert "must point at PostgreSQL" in result.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "NaN"])
def test_a_number_setting_refuses_a_value_that_is_not_finite(value):
    result = settings_load(CONFWATCH_ROUND_SECONDS=value)

    assert result.returncode != 0
    assert f"CONFWATCH_ROUND_SECONDS={value!r} is not a finite number." in result.stderr


@pytest.mark.parametrize(
    "name", ["CONFWATCH_ENCRYPTION_KEY", "CONFWATCH_ALLOWED_API_HOSTS", "ALLOWED_HOSTS"]
)
@pytest.mark.parametrize("value", ["", " , "])
def test_a_list_setting_set_to_nothing_is_refused(name, value):
    result = settings_load(**{name: value})

    assert result.returncode != 0
    assert f"{name}={value!r} lists nothing" in result.stderr


def test_an_empty_list_of_trusted_origins_is_allowed():
    result = settings_load(CSRF_TRUSTED_ORIGINS=" , ")

    assert result.returncode == 0, result.stderr


def deploy_check(**env):
    # The browser tests' DJANGO_ALLOW_ASYNC_UNSAFE is no part of a deployment.
    dropped = {"SECRET_KEY", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    environment = {k: v for k, v in os.environ.items() if k not in dropped}
    environment.update(env, DJANGO_SETTINGS_MODULE="dashboard.settings")
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_in_production_with_the_readmes_settings():
    result = deploy_check(
        CONFWATCH_ENV="production", ALLOWED_HOSTS="confwatch.example.com", SECRET_KEY=STRONG_KEY
    )

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_is_clean_behind_a_tls_proxy_too():
    result = deploy_check(
        CONFWATCH_ENV="production",
        ALLOWED_HOSTS="confwatch.example.com",
        SECRET_KEY=STRONG_KEY,
        CONFWATCH_TLS_PROXY="true",
        CONFWATCH_PROXY_COUNT="1",
    )

    assert result.returncode == 0, result.stderr


def test_check_deploy_warns_when_https_is_switched_off():
    result = deploy_check(
        CONFWATCH_ENV="production",
        ALLOWED_HOSTS="confwatch.example.com",
        SECRET_KEY=STRONG_KEY,
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
    )

    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout


def test_the_database_connection_runs_without_jit_and_keeps_options_from_the_url(db):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"

    url = "postgres://postgres@127.0.0.1:5432/confwatch?options=-c%20statement_timeout%3D5000"
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default']['OPTIONS']['options'])"
    )
    environment = dict(os.environ, DATABASE_URL=url, DJANGO_SETTINGS_MODULE="dashboard.settings")
    result = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["-c", "statement_timeout=5000", "-c", "jit=off"], result.stderr
