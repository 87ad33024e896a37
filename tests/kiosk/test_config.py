"""Configuration: typed settings from the environment, and refusals that name the problem."""

import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk import config as config_module
from kiosk import create_app
from kiosk.config import (
    DEFAULT_SQLITE_PATH,
    KNOWN_PREFIXED_NAMES,
    PROJECT_ROOT,
    SECRET_KEY_LENGTH_MIN_CHARS,
    ConfigError,
    Environment,
    load,
)

POSTGRES_URL = "postgresql://softatm@127.0.0.1:5432/softatm"
PRODUCTION_SECRET = "q7-Hx2Lr9_Vt4Mz8Kp3Wn6Yb1Jc5Gd0Fs" * 2
PRODUCTION_ENVIRON = {
    "SOFTATM_ENV": "production",
    "SECRET_KEY": PRODUCTION_SECRET,
    "DATABASE_URL": POSTGRES_URL,
    "SOFTATM_KEYS_DIR": "/etc/softatm/keys",
}


@pytest.fixture
def default_sqlite_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the default SQLite file into a temporary folder that does not exist yet."""
    path = tmp_path / "var" / "softatm.sqlite3"
    monkeypatch.setattr(config_module, "DEFAULT_SQLITE_PATH", path)
    return path


def test_default_sqlite_file_is_under_the_project_root() -> None:
    assert DEFAULT_SQLITE_PATH.is_absolute()
    assert DEFAULT_SQLITE_PATH == PROJECT_ROOT / "var" / "softatm.sqlite3"
    assert (PROJECT_ROOT / "pyproject.toml").is_file()


def test_development_defaults(default_sqlite_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kiosk.config"):
        config = load(environ={})

    assert config["SOFTATM_ENV"] is Environment.DEVELOPMENT
    assert config["DEBUG"] is False
    assert config["DATABASE_URL"] == f"sqlite:///{default_sqlite_path}"
    assert default_sqlite_path.parent.is_dir()
    secret_key = config["SECRET_KEY"]
    assert isinstance(secret_key, str)
    assert len(secret_key) >= SECRET_KEY_LENGTH_MIN_CHARS
    assert "SECRET_KEY is not set: using a random key for this process only" in caplog.text


def test_random_secret_key_is_stable_within_a_process(default_sqlite_path: Path) -> None:
    assert load(environ={})["SECRET_KEY"] == load(environ={})["SECRET_KEY"]


def test_test_environment_does_not_warn_about_the_random_key(
    default_sqlite_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="kiosk.config"):
        load(environ={"SOFTATM_ENV": "test"})
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("Yes", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("NO", False),
        ("off", False),
    ],
)
def test_flask_debug_becomes_a_bool(raw: str, expected: bool) -> None:
    config = load(environ={"FLASK_DEBUG": raw, "DATABASE_URL": "sqlite://"})
    assert config["DEBUG"] is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("development", Environment.DEVELOPMENT),
        ("test", Environment.TEST),
        (" Production ", Environment.PRODUCTION),
    ],
)
def test_softatm_env_becomes_an_environment(raw: str, expected: Environment) -> None:
    environ = {**PRODUCTION_ENVIRON, "SOFTATM_ENV": raw}
    assert load(environ=environ)["SOFTATM_ENV"] is expected


def test_explicit_settings_are_kept() -> None:
    config = load(environ={"SECRET_KEY": "kept", "DATABASE_URL": POSTGRES_URL})
    assert config["SECRET_KEY"] == "kept"
    assert config["DATABASE_URL"] == POSTGRES_URL


def test_empty_variable_counts_as_not_set(default_sqlite_path: Path) -> None:
    config = load(environ={"SOFTATM_ENV": "", "DATABASE_URL": "", "FLASK_DEBUG": ""})
    assert config["SOFTATM_ENV"] is Environment.DEVELOPMENT
    assert config["DATABASE_URL"] == f"sqlite:///{default_sqlite_path}"
    assert config["DEBUG"] is False


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"FLASK_DEBUG": "maybe"}, "FLASK_DEBUG='maybe' is invalid"),
        ({"SOFTATM_ENV": "staging"}, "SOFTATM_ENV='staging' is invalid"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL='not a url' is invalid"),
    ],
)
def test_value_that_does_not_convert_is_an_error(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(environ={"DATABASE_URL": "sqlite://", **environ})
    assert named in str(raised.value)


def test_unknown_softatm_variable_is_an_error() -> None:
    with pytest.raises(ConfigError) as raised:
        load(environ={"SOFTATM_DATABSE_URL": POSTGRES_URL, "DATABASE_URL": "sqlite://"})
    assert "SOFTATM_DATABSE_URL is not a Soft ATM setting" in str(raised.value)


@given(name=st.from_regex(r"SOFTATM_[A-Z0-9_]{1,30}", fullmatch=True))
def test_every_unknown_softatm_variable_is_named(name: str) -> None:
    environ = {name: "1", "DATABASE_URL": "sqlite://", "SOFTATM_ENV": "test"}
    if name in KNOWN_PREFIXED_NAMES:
        load(environ=environ)
        return
    with pytest.raises(ConfigError) as raised:
        load(environ=environ)
    assert raised.value.problems == [
        f"{name} is not a Soft ATM setting (known: {', '.join(sorted(KNOWN_PREFIXED_NAMES))})"
    ]


def test_unknown_softatm_key_in_overrides_is_an_error() -> None:
    with pytest.raises(ConfigError) as raised:
        load({"SOFTATM_TYPO": True}, environ={"DATABASE_URL": "sqlite://"})
    assert "SOFTATM_TYPO is not a Soft ATM setting" in str(raised.value)


def test_other_environment_variables_are_ignored() -> None:
    config = load(environ={"DATABASE_URL": "sqlite://", "PORT": "8000", "SOFTATMX": "1"})
    assert "PORT" not in config


def test_overrides_replace_the_environment_and_pass_flask_keys_through() -> None:
    config = load(
        {"TESTING": True, "DATABASE_URL": "sqlite://", "DEBUG": True, "SOFTATM_ENV": "test"},
        environ={"DATABASE_URL": POSTGRES_URL, "FLASK_DEBUG": "0", "SOFTATM_ENV": "development"},
    )
    assert config["TESTING"] is True
    assert config["DATABASE_URL"] == "sqlite://"
    assert config["DEBUG"] is True
    assert config["SOFTATM_ENV"] is Environment.TEST


def test_override_of_the_wrong_type_is_an_error() -> None:
    with pytest.raises(ConfigError) as raised:
        load({"DEBUG": 1}, environ={"DATABASE_URL": "sqlite://"})
    assert "DEBUG must be a bool or a string, not int" in str(raised.value)


def test_production_with_everything_set() -> None:
    config = load(environ=PRODUCTION_ENVIRON)
    assert config["SOFTATM_ENV"] is Environment.PRODUCTION
    assert config["SECRET_KEY"] == PRODUCTION_SECRET
    assert config["DATABASE_URL"] == POSTGRES_URL
    assert config["DEBUG"] is False
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_HTTPONLY"] is True
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert config["SESSION_COOKIE_NAME"] == "__Host-softatm_session"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY is 5 characters; production needs at least 32"),
        ({"DATABASE_URL": None}, "DATABASE_URL is not set"),
        ({"DATABASE_URL": "sqlite:////srv/softatm.sqlite3"}, "DATABASE_URL points at SQLite"),
        ({"DATABASE_URL": "sqlite://"}, "DATABASE_URL points at SQLite"),
        ({"FLASK_DEBUG": "1"}, "debug mode is on"),
        ({"SECRET_KEY": "changeme" * 5}, "SECRET_KEY looks like a placeholder"),
        (
            {"SOFTATM_KEYS_DIR": str(PROJECT_ROOT / "var" / "keys")},
            "is inside the application's folder",
        ),
    ],
)
def test_production_refuses_and_names_the_problem(
    change: dict[str, str | None], named: str
) -> None:
    environ = {**PRODUCTION_ENVIRON, **change}
    environ = {name: value for name, value in environ.items() if value is not None}
    with pytest.raises(ConfigError) as raised:
        load(environ=environ)
    assert len(raised.value.problems) == 1
    assert named in raised.value.problems[0]


def test_production_names_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        load(environ={"SOFTATM_ENV": "production", "FLASK_DEBUG": "1", "SOFTATM_X": "1"})
    message = str(raised.value)
    for named in ("SOFTATM_X", "SECRET_KEY", "DATABASE_URL", "debug mode"):
        assert named in message


def test_production_secret_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as raised:
        load(environ={**PRODUCTION_ENVIRON, "SECRET_KEY": "tiny-secret"})
    assert "tiny-secret" not in str(raised.value)


def test_create_app_refuses_a_bad_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTATM_ENVIRONMENT", "production")
    with pytest.raises(ConfigError, match="SOFTATM_ENVIRONMENT is not a Soft ATM setting"):
        create_app({"DATABASE_URL": "sqlite://"})


def test_create_app_refuses_production_on_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTATM_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", PRODUCTION_SECRET)
    with pytest.raises(ConfigError, match="DATABASE_URL points at SQLite"):
        create_app({"DATABASE_URL": "sqlite://"})


def test_create_app_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION_ENVIRON.items():
        monkeypatch.setenv(name, value)
    app = create_app()
    assert app.config["SOFTATM_ENV"] is Environment.PRODUCTION
    assert app.debug is False
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_invalid_database_url_in_production_is_reported_once() -> None:
    with pytest.raises(ConfigError) as raised:
        load(environ={**PRODUCTION_ENVIRON, "DATABASE_URL": "not a url"})
    assert len(raised.value.problems) == 1
    assert raised.value.problems[0].startswith("DATABASE_URL='not a url' is invalid")


def test_invalid_environment_stops_before_any_side_effect(default_sqlite_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load(environ={"SOFTATM_ENV": "prod"})
    assert raised.value.problems == [
        "SOFTATM_ENV='prod' is invalid: expected one of development, test, production"
    ]
    assert not default_sqlite_path.parent.exists()


def test_refused_configuration_creates_no_folder(default_sqlite_path: Path) -> None:
    with pytest.raises(ConfigError):
        load(environ={"SOFTATM_TYPO": "1"})
    assert not default_sqlite_path.parent.exists()


def test_secret_key_of_the_wrong_type_is_reported_once() -> None:
    with pytest.raises(ConfigError) as raised:
        load({"SECRET_KEY": b"bytes"}, environ=PRODUCTION_ENVIRON)
    assert raised.value.problems == ["SECRET_KEY must be a string, not bytes"]
