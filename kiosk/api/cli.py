"""The ``softatm api …`` commands: make a credential (its token is printed once), revoke one,
list them, and prune old idempotency records."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup
from sqlalchemy import select

from agent_portal.models import Agent
from kiosk import database
from kiosk.api import credentials, idempotency

ADMIN_ACTOR = "admin"

api_group = AppGroup("api", help="Manage the JSON API's credentials.")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@api_group.command("create-credential")
@click.option("--agent", "agent_username", help="Bind to this agent (acts exactly as them).")
@click.option("--system", "system_name", help="Bind to this system (needs --scopes).")
@click.option(
    "--scopes",
    default="",
    help="System scopes, comma or space separated: "
    + ", ".join(scope.value for scope in credentials.Scope),
)
@click.option("--commune", "commune_code", help="A system's reach: one commune (5 digits).")
@click.option("--province", "province_code", help="A system's reach: one province (2 digits).")
@click.option("--name", help="What the device or system is, for the list.")
def create_credential(
    *,
    agent_username: str | None,
    system_name: str | None,
    scopes: str,
    commune_code: str | None,
    province_code: str | None,
    name: str | None,
) -> None:
    """Make a credential and print its bearer token ONCE (only its hash is kept)."""
    if (agent_username is None) == (system_name is None):
        raise click.UsageError("give --agent or --system")
    session = database.get_session()
    try:
        if agent_username is not None:
            if scopes or commune_code or province_code:
                raise click.UsageError("an agent's credential takes its scope from the agent")
            agent = session.scalar(
                select(Agent).where(Agent.username == agent_username.strip().lower())
            )
            if agent is None:
                raise click.ClickException(f"no agent {agent_username}")
            credential, token = credentials.create_for_agent(
                session,
                agent,
                name=name or f"agent {agent.username}",
                created_by=ADMIN_ACTOR,
                now=utc_now(),
            )
        else:
            assert system_name is not None
            credential, token = credentials.create_for_system(
                session,
                system_name,
                scopes=scopes.replace(",", " ").split(),
                commune_code=commune_code,
                province_code=province_code,
                name=name,
                created_by=ADMIN_ACTOR,
                now=utc_now(),
            )
    except credentials.CredentialRefused as refused:
        raise click.ClickException(refused.message) from refused
    session.commit()
    click.echo(f"Credential {credential.id} created. Its token (shown once, keep it secret):")
    click.echo(token)


@api_group.command("revoke")
@click.argument("credential_id")
def revoke(credential_id: str) -> None:
    """Revoke a credential at once (every worker sees it on the next request)."""
    session = database.get_session()
    try:
        credentials.revoke(session, credential_id, utc_now())
    except credentials.CredentialRefused as refused:
        raise click.ClickException(refused.message) from refused
    session.commit()
    click.echo(f"Credential {credential_id} revoked.")


@api_group.command("list")
def list_credentials() -> None:
    """The credentials (ids and bindings, never secrets)."""
    for credential in credentials.list_credentials(database.get_session()):
        bound = (
            f"agent:{credential.agent_id}"
            if credential.agent_id is not None
            else f"system:{credential.system_name} [{credential.scopes}]"
        )
        place = credential.commune_code or credential.province_code or "-"
        state = "revoked" if credential.revoked_at is not None else "active"
        click.echo(f"{credential.id}\t{state}\t{bound}\t{place}\t{credential.name}")


@api_group.command("prune-idempotency")
def prune_idempotency() -> None:
    """Delete completed idempotency records older than a week (a batch per run)."""
    session = database.get_session()
    count = idempotency.prune(session, utc_now())
    session.commit()
    click.echo(f"{count} idempotency records deleted.")
