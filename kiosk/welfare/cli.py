"""``softatm welfare …``: release the money of welfare vouchers nobody came for."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup

from kiosk import database
from kiosk.welfare.vouchers import EXPIRY_BATCH_SIZE_MAX, expire_vouchers

welfare_group = AppGroup("welfare", help="Welfare disbursement.")


@welfare_group.command("expire-vouchers")
def expire_vouchers_command() -> None:
    """Return the money of expired, unpaid vouchers to their funds; mark them expired.

    Run it with the ledger sweep (every minute is plenty): it commits batch by batch.
    """
    total = 0
    db = database.database()
    while True:
        with db.sessions() as session:
            expired = expire_vouchers(session, dt.datetime.now(dt.UTC))
            session.commit()
        total += expired
        if expired < EXPIRY_BATCH_SIZE_MAX:
            break
    click.echo(f"Expired {total} welfare vouchers.")
