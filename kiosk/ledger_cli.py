"""The ``softatm ledger …`` command group: operator commands that inspect and check the ledger.

Registered by `kiosk.cli`. Each command is safe to run twice or concurrently with the service.
"""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup
from sqlalchemy.orm import Session

import ledger
from kiosk import database
from ledger.posting import utc_now
from ledger.sweeper import SWEEP_BATCH_SIZE_MAX

# An AppGroup (a click.Group) runs each command inside the app context.
ledger_group = AppGroup("ledger", help="Inspect and check the double-entry ledger.")


def _snapshot_session() -> Session:
    """A session that reads one consistent snapshot, however busy the writers are."""
    db = database.database()
    session = db.sessions()
    if db.engine.dialect.name == "postgresql":
        session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )
    return session


@ledger_group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def verify(as_json: bool) -> None:
    """Recompute every total and hash chain from the transfers; exit 1 on any difference."""
    with _snapshot_session() as session:
        report = ledger.verify_ledger(session)
        session.rollback()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "accounts_checked": report.accounts_checked,
                    "chains_checked": report.chains_checked,
                    "transfers_checked": report.transfers_checked,
                    "problems_total": report.problems_total,
                    "problems": report.problems,
                },
                ensure_ascii=False,
            )
        )
    else:
        click.echo(
            f"Checked {report.transfers_checked} transfers on {report.accounts_checked} accounts "
            f"({report.chains_checked} hash chains)."
        )
        for problem in report.problems:
            click.echo(f"PROBLEM: {problem}")
        if report.problems_total > len(report.problems):
            click.echo(f"… and {report.problems_total - len(report.problems)} more problems.")
        click.echo("Ledger verified: no differences." if report.ok else "Ledger has differences.")
    if not report.ok:
        raise SystemExit(1)


@ledger_group.command("sweep")
@click.option(
    "--batch-size",
    type=click.IntRange(1, SWEEP_BATCH_SIZE_MAX),
    default=SWEEP_BATCH_SIZE_MAX,
    show_default=True,
    help="Reservations voided per transaction.",
)
def sweep(batch_size: int) -> None:
    """Void every expired reservation, committing batch by batch. Welfare vouchers go first, so
    that their beneficiary rows say "expired" when their money returns to the fund."""
    # Imported here: welfare imports the payments and agent modules, which the ledger's other
    # commands do not need.
    from kiosk.welfare.vouchers import EXPIRY_BATCH_SIZE_MAX, expire_vouchers  # noqa: PLC0415

    total = 0
    db = database.database()
    voucher_batch_size = min(batch_size, EXPIRY_BATCH_SIZE_MAX)
    while True:
        with db.sessions() as session:
            expired = expire_vouchers(session, utc_now(), limit=voucher_batch_size)
            session.commit()
        total += expired
        if expired < voucher_batch_size:
            break
    while True:
        with db.sessions() as session:
            voided = ledger.void_expired_reservations(session, limit=batch_size)
            session.commit()
        total += voided
        if voided < batch_size:
            break
    click.echo(f"Voided {total} expired reservations.")


@ledger_group.command("trial-balance")
def trial_balance() -> None:
    """Print each account's posted totals and whether debits equal credits."""
    with _snapshot_session() as session:
        trial = ledger.trial_balance(session)
        session.rollback()
    click.echo(f"{'account':>10}  {'kind':<18} {'debits':>18} {'credits':>18}  name")
    for line in trial.lines:
        click.echo(
            f"{line.account_id:>10}  {line.kind:<18} {line.debits_posted:>18,} "
            f"{line.credits_posted:>18,}  {line.name}"
        )
    click.echo(f"{'total':>10}  {'':<18} {trial.debits_posted:>18,} {trial.credits_posted:>18,}")
    click.echo("Balanced." if trial.balanced else "NOT BALANCED.")
    if not trial.balanced:
        raise SystemExit(1)
