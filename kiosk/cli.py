"""The ``softatm`` command line: database upgrades, demo data and operator command groups.

Serving is gunicorn's job (``deploy/gunicorn.conf.py``), so the Flask development server is
left out on purpose. Each command runs inside an app context built by `kiosk.create_app` from
the environment, and commits at most once, at its end.
"""

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, routes_command, shell_command

from agent_portal.cli import agents_group
from kiosk import create_app, database
from kiosk.adoption.cli import adoption_group
from kiosk.api.cli import api_group
from kiosk.community.cli import officials_group
from kiosk.config import ConfigError, Environment
from kiosk.keys_cli import keys_group
from kiosk.ledger_cli import ledger_group
from kiosk.ops_cli import ops_group


def create_app_from_environment() -> Flask:
    try:
        return create_app()
    except ConfigError as error:
        # An operator needs the list of problems, not a traceback through Flask's CLI.
        raise click.ClickException(str(error)) from error


main = FlaskGroup(
    name="softatm",
    create_app=create_app_from_environment,
    add_default_commands=False,
    help="Soft ATM operator commands.",
)
main.add_command(shell_command)
main.add_command(routes_command)
main.add_command(ledger_group)
main.add_command(keys_group)
main.add_command(agents_group)
main.add_command(officials_group)
main.add_command(ops_group)
main.add_command(adoption_group)
main.add_command(api_group)


@main.command("db-upgrade")
def db_upgrade() -> None:
    """Upgrade the database schema to the newest migration."""
    database_url = current_app.config["DATABASE_URL"]
    database.upgrade(database_url)
    click.echo("Database schema is up to date.")


@main.command("demo-data")
def demo_data() -> None:
    """Load demonstration data (refused in production)."""
    if current_app.config["SOFTATM_ENV"] is Environment.PRODUCTION:
        raise click.ClickException("demo-data refuses to run with SOFTATM_ENV=production.")
    # Imported here so that production commands never load the demo module or what it imports.
    from kiosk import demo  # noqa: PLC0415

    session = database.get_session()
    demo.load(session)
    session.commit()
    click.echo("Demo data loaded.")
