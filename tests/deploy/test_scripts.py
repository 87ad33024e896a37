"""The shell scripts in deploy/: syntax, shellcheck, and what backup.sh hands pg_dump (checked
with stand-ins for pg_dump and pg_restore, so no server is needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY_DIR, debian_tool, run

SCRIPTS = sorted(DEPLOY_DIR.glob("*.sh"))

# Records its arguments and PGPASSWORD, and writes the file it was asked for.
FAKE_PG_DUMP = """#!/bin/sh
printf '%s\\n' "$@" > "$RECORD_DIR/pg_dump.args"
printf '%s' "${PGPASSWORD-unset}" > "$RECORD_DIR/pg_dump.password"
for argument in "$@"; do
    case $argument in --file=*) printf 'PGDMP' > "${argument#--file=}" ;; esac
done
"""
FAKE_PG_RESTORE = "#!/bin/sh\nexit 0\n"


def test_the_expected_scripts_exist() -> None:
    assert [script.name for script in SCRIPTS] == ["backup.sh", "restore.sh"]
    for script in SCRIPTS:
        assert script.read_text().startswith("#!/usr/bin/env bash\n")
        assert "set -euo pipefail" in script.read_text()
        assert os.access(script, os.X_OK), f"{script.name} is not executable"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_bash_syntax(script: Path) -> None:
    result = run(["bash", "-n", script])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_shellcheck(script: Path) -> None:
    shellcheck = debian_tool("shellcheck", "shellcheck")
    result = run([shellcheck, "--shell=bash", "--severity=style", script])
    assert result.returncode == 0, result.stdout


@pytest.fixture
def fake_pg(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("pg_dump", FAKE_PG_DUMP), ("pg_restore", FAKE_PG_RESTORE)):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    keys = tmp_path / "keys" / "data"
    keys.mkdir(parents=True)
    (keys / "encryption.key").write_bytes(b"k" * 32)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PGPASSWORD", "DATABASE_URL", "SOFTATM_KEYS_DIR", "BACKUP_KEYS_DIR"}
    }
    return env | {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "RECORD_DIR": str(tmp_path),
        "SOFTATM_KEYS_DIR": str(tmp_path / "keys"),
        "BACKUP_DIR": str(tmp_path / "backups"),
    }


@pytest.mark.parametrize(
    ("database_url", "libpq_url", "password"),
    [
        (
            "postgresql+psycopg://softatm:s%40cr%3At@db.internal:5432/softatm?sslmode=require",
            "postgresql://softatm@db.internal:5432/softatm?sslmode=require",
            "s@cr:t",
        ),
        ("postgresql://postgres@127.0.0.1/test", "postgresql://postgres@127.0.0.1/test", "unset"),
        ("postgres://a:b@h/d", "postgres://a@h/d", "b"),
    ],
)
def test_backup_keeps_the_password_out_of_the_arguments(
    fake_pg: dict[str, str], tmp_path: Path, database_url: str, libpq_url: str, password: str
) -> None:
    result = run(["bash", DEPLOY_DIR / "backup.sh"], env=fake_pg | {"DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    arguments = (tmp_path / "pg_dump.args").read_text().splitlines()
    assert arguments[0] == "--format=custom" and f"--dbname={libpq_url}" in arguments
    assert (tmp_path / "pg_dump.password").read_text() == password
    (dump,) = (tmp_path / "backups").glob("softatm-db-*.dump")
    assert dump.read_bytes() == b"PGDMP"
    assert not list((tmp_path / "backups").glob("*.partial"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"DATABASE_URL": ""}, "DATABASE_URL must name the database to back up"),
        ({"SOFTATM_KEYS_DIR": ""}, "SOFTATM_KEYS_DIR must name the keys folder"),
        ({"SOFTATM_KEYS_DIR": "/nonexistent/keys"}, "the keys folder /nonexistent/keys does not"),
        ({"BACKUP_RETENTION_DAYS": "0"}, "BACKUP_RETENTION_DAYS must be a whole number"),
        ({"BACKUP_RETENTION_DAYS": "1w"}, "BACKUP_RETENTION_DAYS must be a whole number"),
    ],
)
def test_backup_refuses_a_bad_environment(
    fake_pg: dict[str, str], change: dict[str, str], message: str
) -> None:
    env = fake_pg | {"DATABASE_URL": "postgresql://postgres@127.0.0.1/test"} | change
    result = run(["bash", DEPLOY_DIR / "backup.sh"], env=env)
    assert result.returncode != 0 and message in result.stderr
