"""The ``softatm agents …`` command group: post office points and the people who work them.

The operator (actor "admin" in the audit log) creates points and their first agents here;
supervisors manage their own point's agents from the portal. Every command writes its audit
entry and commits once, at its end; a refused change leaves nothing behind.
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

from agent_portal import audit
from agent_portal.audit import Action
from agent_portal.models import MINUTES_PER_DAY, Agent, PostOffice, Role
from agent_portal.staff import (
    StaffRefused,
    create_agent,
    create_post_office,
    normalise_username,
    reset_totp,
    set_active,
)
from kiosk import database
from kiosk.i18n import DEFAULT_LANGUAGE
from kiosk.places.models import Commune

ADMIN_ACTOR = "admin"
# `agents list` shows at most this many rows (a district has a few hundred agents).
LIST_ROWS_MAX = 1000

agents_group = AppGroup("agents", help="Manage post office points and their agents.")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextmanager
def _operation() -> Iterator[Session]:
    """The command's session, committed by the caller; rules broken become a ClickException.

    The staff messages are Vietnamese gettext strings: outside a request there is no visitor's
    language to pick, so the catalogue's source language is used.
    """
    with force_locale(DEFAULT_LANGUAGE):
        try:
            yield database.get_session()
        except StaffRefused as refused:
            raise click.ClickException(refused.message) from refused


def _minute_of_day(_context: click.Context, _parameter: click.Parameter, value: str) -> int:
    hours, separator, minutes = value.partition(":")
    if separator and hours.isdigit() and minutes.isdigit() and len(minutes) == 2:
        minute = int(hours) * 60 + int(minutes)
        if int(minutes) < 60 and 0 <= minute <= MINUTES_PER_DAY:
            return minute
    raise click.BadParameter(f"expected a time of day as HH:MM, got {value!r}")


def _post_office(session: Session, code: str) -> PostOffice:
    post_office = session.scalar(select(PostOffice).where(PostOffice.code == code.strip().upper()))
    if post_office is None:
        raise click.ClickException(f"No post office with code {code!r}.")
    return post_office


def _agent(session: Session, username: str) -> Agent:
    agent = session.scalar(select(Agent).where(Agent.username == normalise_username(username)))
    if agent is None:
        raise click.ClickException(f"No agent with username {username!r}.")
    return agent


@agents_group.command("create-post-office")
@click.option("--code", required=True, help='Short code printed on receipts ("BD00226").')
@click.option("--name", required=True, help="The point's name.")
@click.option("--commune", "commune_code", required=True, help="Official 5-digit commune code.")
@click.option("--opens", default="07:00", show_default=True, callback=_minute_of_day)
@click.option("--closes", default="17:00", show_default=True, callback=_minute_of_day)
def create_post_office_command(
    code: str, name: str, commune_code: str, opens: int, closes: int
) -> None:
    """Create a post office point with its ledger accounts."""
    if opens >= closes:
        raise click.ClickException("The point must open before it closes (--opens < --closes).")
    now = utc_now()
    with _operation() as session:
        if session.get(Commune, commune_code.strip()) is None:
            raise click.ClickException(f"No commune with code {commune_code!r}.")
        post_office = create_post_office(
            session,
            code=code,
            name=name,
            commune_code=commune_code.strip(),
            opens_minute=opens,
            closes_minute=closes,
            now=now,
        )
        audit.record(
            session,
            actor=ADMIN_ACTOR,
            action=Action.POST_OFFICE_CREATED,
            now=now,
            post_office_id=post_office.id,
            subject=post_office.code,
        )
        session.commit()
    click.echo(f"Created post office {post_office.code} ({post_office.name}).")


@agents_group.command("create")
@click.option("--post-office", "post_office_code", required=True, help="The point's code.")
@click.option("--username", required=True, help='Lower-case login name ("lan.nguyen").')
@click.option("--name", "full_name", required=True, help="Full name, as on the ID card.")
@click.option(
    "--role",
    type=click.Choice([role.value for role in Role]),
    default=Role.AGENT.value,
    show_default=True,
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the first password from the first line of standard input instead of asking.",
)
def create_agent_command(
    post_office_code: str, username: str, full_name: str, role: str, password_stdin: bool
) -> None:
    """Create an agent or supervisor; they set up TOTP at their first sign-in."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    now = utc_now()
    with _operation() as session:
        post_office = _post_office(session, post_office_code)
        agent = create_agent(
            session,
            post_office=post_office,
            username=username,
            full_name=full_name,
            password=password,
            role=Role(role),
            created_by=ADMIN_ACTOR,
            now=now,
        )
        audit.record_on_agent(
            session,
            agent,
            actor=ADMIN_ACTOR,
            action=Action.AGENT_CREATED,
            now=now,
            detail=f"role={agent.role}",
        )
        session.commit()
    click.echo(
        f"Created {agent.role} {agent.username} at {post_office.code}. "
        "They set up their authenticator app at their first sign-in."
    )


@agents_group.command("list")
@click.option("--post-office", "post_office_code", help="Only this point's agents.")
def list_agents(post_office_code: str | None) -> None:
    """List agents: username, role, point, state, whether TOTP is set up, full name."""
    with _operation() as session:
        query = (
            select(Agent, PostOffice.code)
            .join(PostOffice, PostOffice.id == Agent.post_office_id)
            .order_by(PostOffice.code, Agent.username)
            .limit(LIST_ROWS_MAX + 1)
        )
        if post_office_code is not None:
            query = query.where(PostOffice.id == _post_office(session, post_office_code).id)
        rows = session.execute(query).all()
        session.rollback()
    for agent, code in rows[:LIST_ROWS_MAX]:
        state = "active" if agent.active else "inactive"
        enrolled = "totp" if agent.totp_enrolled_at is not None else "no-totp"
        click.echo(
            f"{agent.username:<40} {agent.role:<10} {code:<16} {state:<8} {enrolled:<7} "
            f"{agent.full_name}"
        )
    if len(rows) > LIST_ROWS_MAX:
        click.echo(f"… only the first {LIST_ROWS_MAX} are shown; use --post-office.")
    elif not rows:
        click.echo("No agents.")


@agents_group.command("deactivate")
@click.argument("username")
def deactivate(username: str) -> None:
    """Stop USERNAME from signing in; their sessions end at once."""
    now = utc_now()
    with _operation() as session:
        agent = _agent(session, username)
        if not agent.active:
            raise click.ClickException(f"{agent.username} is already deactivated.")
        set_active(session, agent, False, now)
        audit.record_on_agent(
            session, agent, actor=ADMIN_ACTOR, action=Action.AGENT_DEACTIVATED, now=now
        )
        session.commit()
    click.echo(f"Deactivated {agent.username}; their sessions have ended.")


@agents_group.command("reset-totp")
@click.argument("username")
def reset_totp_command(username: str) -> None:
    """Forget USERNAME's authenticator (a lost phone): they set up a new one at next sign-in."""
    now = utc_now()
    with _operation() as session:
        agent = _agent(session, username)
        reset_totp(session, agent, now)
        audit.record_on_agent(session, agent, actor=ADMIN_ACTOR, action=Action.TOTP_RESET, now=now)
        session.commit()
    click.echo(
        f"Reset the authenticator of {agent.username}; their sessions have ended. "
        "They set up a new one at their next sign-in."
    )
