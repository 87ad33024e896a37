"""The ``softatm officials …`` command group: officials, team members and admins.

The operator (actor "admin") creates the first admin and officials here; commune officials then
manage their own team members from ``/quan-ly/nhan-su``. Every command commits once, at its
end; a refused change leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask.cli import AppGroup
from flask_babel import force_locale  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk import database
from kiosk.auth.staff import normalise_username
from kiosk.community.models import Official, OfficialRole
from kiosk.community.staff import (
    ADMIN_ACTOR,
    OFFICIALS_LISTED_MAX,
    StaffRefused,
    create_official,
    list_officials,
    reset_official_totp,
    set_official_active,
)
from kiosk.i18n import DEFAULT_LANGUAGE

officials_group = AppGroup(
    "officials", help="Manage commune and province officials, team members and admins."
)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextmanager
def _operation() -> Iterator[Session]:
    """The command's session, committed by the caller; rules broken become a ClickException.
    The messages are Vietnamese gettext strings: the catalogue's source language is used."""
    with force_locale(DEFAULT_LANGUAGE):
        try:
            yield database.get_session()
        except StaffRefused as refused:
            raise click.ClickException(refused.message) from refused


def _official(session: Session, username: str) -> Official:
    official = session.scalar(
        select(Official).where(Official.username == normalise_username(username))
    )
    if official is None:
        raise click.ClickException(f"No official with username {username!r}.")
    return official


@officials_group.command("create")
@click.option("--role", required=True, type=click.Choice([role.value for role in OfficialRole]))
@click.option(
    "--commune", "commune_code", help="5-digit commune code (team members, commune officials)."
)
@click.option("--province", "province_code", help="2-digit province code (province officials).")
@click.option("--username", required=True, help='Lower-case login name ("hoa.tran").')
@click.option("--full-name", "--name", "full_name", required=True, help="Full name.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the first password from the first line of standard input instead of asking.",
)
def create_command(
    *,
    role: str,
    commune_code: str | None,
    province_code: str | None,
    username: str,
    full_name: str,
    password_stdin: bool,
) -> None:
    """Create an official; they set up TOTP at their first sign-in."""
    official_role = OfficialRole(role)
    if official_role in {OfficialRole.TEAM_MEMBER, OfficialRole.COMMUNE_OFFICIAL}:
        if not commune_code or province_code:
            raise click.UsageError(f"--role {role} takes --commune (and no --province).")
    elif official_role is OfficialRole.PROVINCE_OFFICIAL:
        if not province_code or commune_code:
            raise click.UsageError(f"--role {role} takes --province (and no --commune).")
    elif commune_code or province_code:
        raise click.UsageError("--role admin takes neither --commune nor --province.")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _operation() as session:
        official = create_official(
            session,
            username=username,
            full_name=full_name,
            password=password,
            role=official_role,
            commune_code=commune_code,
            province_code=province_code,
            created_by=ADMIN_ACTOR,
            now=utc_now(),
        )
        session.commit()
    place = official.commune_code or official.province_code or "everywhere"
    click.echo(
        f"Created {official.role} {official.username} ({place}). "
        "They set up their authenticator app at their first sign-in."
    )


@officials_group.command("list")
@click.option("--commune", "commune_code", help="Only this commune's people.")
def list_command(commune_code: str | None) -> None:
    """List officials: username, role, place, state, whether TOTP is set up, full name."""
    with _operation() as session:
        rows = list_officials(session, commune_code=commune_code, limit=OFFICIALS_LISTED_MAX)
        session.rollback()
    for official in rows:
        place = official.commune_code or official.province_code or "-"
        state = "active" if official.active else "inactive"
        enrolled = "totp" if official.totp_enrolled_at is not None else "no-totp"
        click.echo(
            f"{official.username:<40} {official.role:<17} {place:<5} {state:<8} {enrolled:<7} "
            f"{official.full_name}"
        )
    if len(rows) >= OFFICIALS_LISTED_MAX:
        click.echo(f"… only the first {OFFICIALS_LISTED_MAX} are shown; use --commune.")
    elif not rows:
        click.echo("No officials.")


@officials_group.command("deactivate")
@click.argument("username")
def deactivate_command(username: str) -> None:
    """Stop USERNAME from signing in; their sessions end at once."""
    with _operation() as session:
        official = _official(session, username)
        if not official.active:
            raise click.ClickException(f"{official.username} is already deactivated.")
        set_official_active(session, official, False, by=ADMIN_ACTOR, now=utc_now())
        session.commit()
    click.echo(f"Deactivated {official.username}; their sessions have ended.")


@officials_group.command("reset-totp")
@click.argument("username")
def reset_totp_command(username: str) -> None:
    """Forget USERNAME's authenticator (a lost phone): they set up a new one at next sign-in."""
    with _operation() as session:
        official = _official(session, username)
        reset_official_totp(session, official, by=ADMIN_ACTOR, now=utc_now())
        session.commit()
    click.echo(
        f"Reset the authenticator of {official.username}; their sessions have ended. "
        "They set up a new one at their next sign-in."
    )
