"""The operator commands: migrate, demo data, verify, sweep and trial balance, end to end."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from flask import Flask

import ledger
from kiosk import database
from kiosk.cli import main
from ledger.schema import balances_table
from tests.kiosk.conftest import AppFactory


@pytest.fixture
def file_app(make_app: AppFactory, tmp_path: Path) -> Flask:
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    database.upgrade(app.config["DATABASE_URL"])
    return app


def run(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(main, list(args))
    return result.exit_code, result.output


def test_demo_data_twice_then_verify_and_trial_balance(file_app: Flask) -> None:
    assert run(file_app, "demo-data")[0] == 0
    assert run(file_app, "demo-data")[0] == 0  # loading again adds nothing
    code, output = run(file_app, "ledger", "verify", "--json")
    report = json.loads(output)
    # The opening float and three cash-ins; the welfare fund's money from the treasury, two
    # payments into wallets and one voucher's reservation.
    assert code == 0 and report["ok"] and report["transfers_checked"] == 8
    code, output = run(file_app, "ledger", "trial-balance")
    assert code == 0 and "Balanced." in output and "Hoàng Thị Mai" in output


def test_sweep_voids_expired_reservations(file_app: Flask) -> None:
    run(file_app, "demo-data")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with file_app.app_context():
        session = database.get_session()
        wallet = ledger.find_account(session, ledger.AccountKind.CITIZEN_WALLET, "citizen:1")
        drawer = ledger.find_account(
            session, ledger.AccountKind.AGENT_DRAWER, "agent:demo.agent:drawer"
        )
        assert wallet is not None and drawer is not None
        # A code made an hour ago that lived 15 minutes: expired, not yet swept.
        ledger.post_transfer(
            session,
            ledger.Reserve("cli-test:code", wallet.id, drawer.id, 100_000, "withdrawal", 900),
            now=past,
        )
        session.commit()
    code, output = run(file_app, "ledger", "sweep")
    assert code == 0 and "Voided 1 expired reservations." in output
    code, output = run(file_app, "ledger", "sweep")
    assert code == 0 and "Voided 0 expired reservations." in output


def test_verify_fails_loudly_on_a_difference(file_app: Flask) -> None:
    run(file_app, "demo-data")
    with file_app.app_context():
        session = database.get_session()
        session.execute(
            balances_table.update()
            .where(balances_table.c.account_id == 6)
            .values(credits_posted=balances_table.c.credits_posted + 1)
        )
        session.commit()
    code, output = run(file_app, "ledger", "verify")
    assert code == 1
    assert "PROBLEM: account 6 shard 0: totals" in output
    assert "Ledger has differences." in output


def test_keys_init_rotate_retire(file_app: Flask) -> None:
    code, output = run(file_app, "keys", "init")
    assert code == 0 and "Keys are in place." in output
    assert run(file_app, "keys", "init")[0] == 0  # again: keeps what is there
    code, output = run(file_app, "keys", "rotate-signing")
    assert code == 0 and "now signs new codes" in output
    assert json.loads(run(file_app, "keys", "status")[1]) == {"signer": 2, "verifying": [1, 2]}
    code, output = run(file_app, "keys", "retire-signing", "2")
    assert code != 0 and "signs now and cannot be retired" in output
    assert run(file_app, "keys", "retire-signing", "1")[0] == 0
    assert json.loads(run(file_app, "keys", "status")[1]) == {"signer": 2, "verifying": [2]}
    keys_dir = file_app.config["KEYS_DIR"]
    for path in (keys_dir / "data").iterdir():
        assert path.stat().st_mode & 0o077 == 0
