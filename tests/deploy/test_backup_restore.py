"""deploy/backup.sh and deploy/restore.sh against a real PostgreSQL: a database with demo data is
backed up, restored into an empty database, and the copy verifies with the same rows."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

import ledger
from kiosk import database, demo
from kiosk.cli import main
from tests.deploy.conftest import DEPLOY_DIR, AppFactory, run

TABLES = (
    "accounts",
    "transfers",
    "account_balances",
    "citizens",
    "post_offices",
    "agents",
    "drawer_sessions",
    "counter_operations",
    "audit_events",
    "communes",
)
OLD_S = 20 * 24 * 60 * 60

pytestmark = pytest.mark.postgres


def row_counts(url: str) -> dict[str, int]:
    engine = ledger.database.make_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in TABLES
            }
    finally:
        engine.dispose()


def script_env(**values: str | Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "SOFTATM_KEYS_DIR", "BACKUP_DIR", "BACKUP_KEYS_DIR"}
    }
    return env | {key: str(value) for key, value in values.items()}


def test_backup_then_restore_gives_an_identical_ledger(
    make_app: AppFactory,
    scratch_database: Callable[[], str],
    pg_tools: tuple[str, str],
    tmp_path: Path,
) -> None:
    source = scratch_database()
    database.upgrade(source)
    app = make_app(source)
    with app.app_context():
        session = database.get_session()
        demo.load(session)
        session.commit()
    assert app.test_cli_runner().invoke(main, ["keys", "init"]).exit_code == 0
    keys_dir: Path = app.config["KEYS_DIR"]
    expected_counts = row_counts(source)
    assert expected_counts["transfers"] > 0 and expected_counts["drawer_sessions"] == 1

    backups, keys_backups = tmp_path / "backups", tmp_path / "keys-backups"
    backups.mkdir()
    stale = backups / "softatm-db-20000101T000000Z.dump"
    stale.write_bytes(b"old")
    os.utime(stale, (time.time() - OLD_S, time.time() - OLD_S))
    unrelated = backups / "notes.txt"
    unrelated.write_text("kept")
    os.utime(unrelated, (time.time() - OLD_S, time.time() - OLD_S))

    # The app's URL form, with its driver: the script hands libpq a plain postgresql:// URL.
    app_url = make_url(source).set(drivername="postgresql+psycopg")
    result = run(
        ["bash", DEPLOY_DIR / "backup.sh"],
        env=script_env(
            DATABASE_URL=app_url.render_as_string(hide_password=False),
            SOFTATM_KEYS_DIR=keys_dir,
            BACKUP_DIR=backups,
            BACKUP_KEYS_DIR=keys_backups,
            BACKUP_RETENTION_DAYS="14",
        ),
    )
    assert result.returncode == 0, result.stderr
    (dump,) = backups.glob("softatm-db-*.dump")
    (keys_archive,) = keys_backups.glob("softatm-keys-*.tar")
    for path in (dump, keys_archive):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.name in result.stdout
    assert stat.S_IMODE(keys_backups.stat().st_mode) == 0o700
    # Retention removed the old dump and nothing that is not a backup.
    assert not stale.exists() and unrelated.exists()
    assert f"removed old {stale}" in result.stdout

    target = scratch_database()
    restored_keys = tmp_path / "restored" / "keys"
    result = run(
        [
            "bash",
            DEPLOY_DIR / "restore.sh",
            "--database-url",
            target,
            "--dump",
            dump,
            "--keys",
            keys_archive,
            "--keys-dir",
            restored_keys,
        ],
        env=script_env(),
    )
    assert result.returncode == 0, result.stderr

    assert row_counts(target) == expected_counts
    original = {p.relative_to(keys_dir): p.read_bytes() for p in keys_dir.rglob("*") if p.is_file()}
    copied = {
        p.relative_to(restored_keys): p.read_bytes()
        for p in restored_keys.rglob("*")
        if p.is_file()
    }
    assert copied == original and original
    assert stat.S_IMODE(restored_keys.stat().st_mode) == 0o700

    # The operator's checks after a restore, through the real commands: verify, and a report
    # (both read-only, on PostgreSQL's snapshot path).
    restored_app = make_app(target)
    runner = restored_app.test_cli_runner()
    verify = runner.invoke(main, ["ledger", "verify", "--json"])
    report = json.loads(verify.stdout)
    assert verify.exit_code == 0 and report["ok"] and report["problems_total"] == 0
    assert report["transfers_checked"] == expected_counts["transfers"]
    drawers = runner.invoke(main, ["ops", "drawer-report"])
    assert drawers.exit_code == 0 and "demo.agent" in drawers.stdout
    # The restored schema is at the newest migration: upgrading again changes nothing.
    database.upgrade(target)
    assert row_counts(target) == expected_counts


def test_restore_refuses_to_mix_keys_and_checks_its_arguments(
    pg_tools: tuple[str, str], tmp_path: Path
) -> None:
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    (keys_dir / "data").mkdir()
    archive, dump = tmp_path / "keys.tar", tmp_path / "db.dump"
    archive.write_bytes(b"")
    dump.write_bytes(b"")
    restore = ["bash", DEPLOY_DIR / "restore.sh"]
    result = run(
        [
            *restore,
            "--database-url",
            "postgresql://nobody@127.0.0.1:1/none",
            "--dump",
            dump,
            "--keys",
            archive,
            "--keys-dir",
            keys_dir,
        ],
        env=script_env(),
    )
    assert result.returncode == 1
    assert "is not empty: restore the keys into an empty folder" in result.stderr
    for arguments in ([], ["--dump", dump], ["--database-url", "postgresql://x/y", "--keys"]):
        result = run([*restore, *arguments], env=script_env())
        assert result.returncode == 2 and "usage:" in result.stderr
