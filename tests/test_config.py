"""Configuration: defaults, and a bad value fails at start naming the variable."""

import os

import pytest

from app import create_app
from app.config import ConfigError, load, server_settings


def test_defaults_need_no_environment():
    config = load({})
    assert config["DATABASE_URL"].startswith("sqlite:///") and config["DATABASE_URL"].endswith(
        "var/glowing-fiesta.sqlite3"
    )
    assert (config["METRICS_RETENTION_DAYS"], config["METRICS_RETENTION_GRACE_DAYS"]) == (90, 1)
    assert config["METRICS_RATE_LIMIT_DEFAULT"] == 1000
    assert (config["METRICS_MAX_PAST_DAYS"], config["METRICS_MAX_FUTURE_SECONDS"]) == (7, 60)
    assert (
        config["METRICS_MAX_BATCH"],
        config["MAX_CONTENT_LENGTH"],
        config["METRICS_MAX_BUCKETS"],
    ) == (
        1000,
        1048576,
        10000,
    )
    assert config["INGEST_MODE"] == "sync" and config["REDIS_URL"] is None


@pytest.mark.parametrize(
    "variable, value",
    [
        ("DATABASE_URL", "postgres://x"),
        ("DATABASE_READ_URL", "nonsense"),
        ("REDIS_URL", "http://localhost"),
        ("INGEST_MODE", "async"),
        ("METRICS_RETENTION_DAYS", "ninety"),
        ("METRICS_RETENTION_DAYS", "-1"),
        ("METRICS_RETENTION_GRACE_DAYS", "-1"),
        ("METRICS_RATE_LIMIT_DEFAULT", "lots"),
        ("METRICS_RATE_LIMIT_DEFAULT", "10 per hour"),
        ("METRICS_MAX_PAST_DAYS", "1.5"),
        ("METRICS_MAX_FUTURE_SECONDS", "-5"),
        ("METRICS_MAX_BATCH", "0"),
        ("MAX_CONTENT_LENGTH", "1MB"),
        ("METRICS_MAX_BUCKETS", "x"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_a_bad_value_fails_at_start_naming_the_variable(monkeypatch, capsys, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        create_app({})  # tests (and other callers) get the exception itself
    with pytest.raises(SystemExit) as exited:
        create_app()  # the CLI and the servers: a short message and exit status 2
    message = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == 2 and len(message) == 1 and variable in message[0]


@pytest.mark.parametrize("raw", ["500", "500 per minute", "500/minute", "500 per 1 minute"])
def test_rate_limit_default_accepts_per_minute_forms(raw):
    assert load({"METRICS_RATE_LIMIT_DEFAULT": raw})["METRICS_RATE_LIMIT_DEFAULT"] == 500


def test_server_settings_default_to_one_threaded_worker_on_the_embedded_default():
    settings = server_settings({})
    assert settings["bind"] == "127.0.0.1:8000"
    assert (settings["workers"], settings["threads"]) == (1, 8)
    assert (settings["max_requests"], settings["request_read_timeout"]) == (0, 10)


def test_server_settings_use_several_workers_with_mysql_and_redis():
    settings = server_settings(
        {"DATABASE_URL": "mysql+pymysql://u@db/x", "REDIS_URL": "redis://cache:6379/0"}
    )
    assert settings["workers"] == 2 * (os.cpu_count() or 1)


def test_server_settings_read_port_and_concurrency():
    settings = server_settings({"PORT": "9100", "WEB_CONCURRENCY": "3", "THREADS": "2"})
    assert (settings["bind"], settings["workers"], settings["threads"]) == ("127.0.0.1:9100", 3, 2)


def test_bad_port_fails_naming_it():
    with pytest.raises(ConfigError, match="PORT"):
        server_settings({"PORT": "http"})


def test_worker_recycling_and_read_timeout_are_read_and_checked():
    settings = server_settings({"WORKER_MAX_REQUESTS": "5000", "REQUEST_READ_TIMEOUT": "3"})
    assert (settings["max_requests"], settings["max_requests_jitter"]) == (5000, 500)
    assert settings["request_read_timeout"] == 3
    with pytest.raises(ConfigError, match="WORKER_MAX_REQUESTS"):
        server_settings({"WORKER_MAX_REQUESTS": "-1"})
    with pytest.raises(ConfigError, match="REQUEST_READ_TIMEOUT"):
        server_settings({"REQUEST_READ_TIMEOUT": "0"})
