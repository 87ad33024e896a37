"""Fixtures for the deployment checks: the deploy/ folder, Debian tools installed when missing,
commands run with a time limit, and scratch PostgreSQL databases.

A tool the checks need (nginx, shellcheck, systemd-analyze) is installed with apt-get when it is
missing and the run is root, as `make test` installs Chromium. When it cannot be had the check is
skipped with the reason, except under CI=true, where that is a failure: CI must run every check.
"""

from __future__ import annotations

import configparser
import functools
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import click
import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import make_url

from kiosk import create_app, database
from kiosk.cli import main
from kiosk.config import SETTING_PREFIX, SETTINGS
from ledger.database import make_engine

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = PROJECT_ROOT / "deploy"
UNITS_DIR = DEPLOY_DIR / "systemd"
APT_TIMEOUT_S = 600
COMMAND_TIMEOUT_S = 120
TEST_SECRET_KEY = "deploy-test-secret-key-long-enough-for-production"

AppFactory = Callable[..., Flask]


def run(
    command: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    timeout_s: int = COMMAND_TIMEOUT_S,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command without a shell and capture its output (never raises on its exit code)."""
    return subprocess.run(  # noqa: S603 — the tests' own fixed commands
        [str(part) for part in command],
        env=None if env is None else dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def unavailable(message: str) -> None:
    """Skip, or fail under CI=true."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: this check must run)")
    pytest.skip(message)


@functools.cache
def _apt_install(package: str) -> str | None:
    """Install a Debian package; None when it worked, else why not. Once per run and package."""
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return f"not root, so `apt-get install {package}` is not possible"
    # RUNLEVEL=1: the package's service is not started (a policy-rc.d may say so too).
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "RUNLEVEL": "1"}
    install = [apt_get, "install", "-y", "-qq", "--no-install-recommends", package]
    result = run(install, env=env, timeout_s=APT_TIMEOUT_S)
    if result.returncode != 0:
        # The package lists may be missing or stale: refresh them once and try again.
        run([apt_get, "update", "-qq"], env=env, timeout_s=APT_TIMEOUT_S)
        result = run(install, env=env, timeout_s=APT_TIMEOUT_S)
    if result.returncode != 0:
        return f"`apt-get install {package}` failed: {result.stderr.strip()[-300:]}"
    return None


def debian_tool(command: str, package: str) -> str:
    """The path of ``command``, installing Debian's ``package`` when it is missing."""
    found = shutil.which(command)
    if found is None:
        problem = _apt_install(package)
        found = shutil.which(command)
        if found is None:
            unavailable(f"{command} is not available: {problem or 'not found after install'}")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def pg_tools() -> tuple[str, str]:
    """pg_dump and pg_restore (Debian's postgresql-client, there wherever PostgreSQL is)."""
    pg_dump, pg_restore = shutil.which("pg_dump"), shutil.which("pg_restore")
    if pg_dump is None or pg_restore is None:
        unavailable("pg_dump or pg_restore is missing (Debian package postgresql-client)")
    assert pg_dump is not None and pg_restore is not None
    return pg_dump, pg_restore


@pytest.fixture
def scratch_database(postgres_url: str) -> Iterator[Callable[[], str]]:
    """Make empty databases on the test server (dropped afterwards); each call returns a URL."""
    admin = make_engine(postgres_url, isolation_level="AUTOCOMMIT")
    names: list[str] = []

    def make() -> str:
        name = f"softatm_deploy_{os.getpid()}_{secrets.token_hex(3)}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        names.append(name)
        return make_url(postgres_url).set(database=name).render_as_string(hide_password=False)

    yield make
    with admin.connect() as connection:
        for name in names:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def make_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppFactory]:
    """Build a test app over a database URL (its keys in a fresh folder; keyword arguments add to
    the settings); its connections are closed afterwards."""
    apps: list[Flask] = []

    def build(database_url: str, **overrides: object) -> Flask:
        app = create_app(
            {
                "TESTING": True,
                "SOFTATM_ENV": "test",
                "DATABASE_URL": database_url,
                "SECRET_KEY": TEST_SECRET_KEY,
                "KEYS_DIR": tmp_path_factory.mktemp("keys"),
                **overrides,
            }
        )
        apps.append(app)
        return app

    yield build
    for app in apps:
        database.dispose(app)


def unit(path: Path) -> configparser.ConfigParser:
    """A unit file's sections and keys (for keys given twice, the last value)."""
    parser = configparser.ConfigParser(
        interpolation=None, strict=False, delimiters=("=",), comment_prefixes=("#", ";")
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def resolve_softatm_command(arguments: list[str]) -> click.Command:
    """The click command that ``softatm ARGUMENTS`` runs, its options parsed (raises if not)."""
    command: click.Command = main
    context = click.Context(main, info_name="softatm")
    while isinstance(command, click.Group):
        name, *arguments = arguments
        found = command.get_command(context, name)
        assert found is not None, f"softatm has no command {name!r}"
        command = found
    command.make_context(command.name, list(arguments))
    return command


def unknown_settings(text: str) -> set[str]:
    """The SOFTATM_* variables ``text`` sets that the app does not know: the app refuses to start
    with one (kiosk/config.py), so a renamed setting must be renamed here too."""
    known = {setting.variable for setting in SETTINGS}
    named = set(re.findall(rf"\b({SETTING_PREFIX}[A-Z0-9_]+)\s*[:=]", text))
    return named - known
