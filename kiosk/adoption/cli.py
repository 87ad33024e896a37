"""``softatm adoption …``: bring the adoption figures up to date (every minute, from the
scheduler), or rebuild them from the accounts and the ledger."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup

from kiosk import database
from kiosk.adoption.rollup import BATCH_LIMIT_ROWS, rebuild, roll_up

adoption_group = AppGroup("adoption", help="Adoption indicators.")
# A backlog (a first deployment on a busy ledger) is read this many batches per command at most.
ROLLUP_RUNS_MAX = 100


@adoption_group.command("rollup")
def rollup_command() -> None:
    """Read what is new since the last run and update the figures; commits batch by batch."""
    db = database.database()
    totals = [0, 0, 0]
    for _run in range(ROLLUP_RUNS_MAX):
        with db.sessions() as session:
            result = roll_up(session, dt.datetime.now(dt.UTC), batch_limit=BATCH_LIMIT_ROWS)
            session.commit()
        totals[0] += result.citizens_read
        totals[1] += result.verifications_read
        totals[2] += result.transfers_read
        if result.caught_up:
            break
    click.echo(
        f"Adoption roll-up: read {totals[0]} citizens, {totals[1]} verifications, "
        f"{totals[2]} transfers."
    )


@adoption_group.command("rebuild")
def rebuild_command() -> None:
    """Recompute every adoption aggregate from scratch (after a repair, or a first deployment)."""
    db = database.database()
    with db.sessions() as session:
        rebuild(session, dt.datetime.now(dt.UTC))
        session.commit()
    click.echo("Adoption figures rebuilt.")
