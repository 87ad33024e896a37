"""The `kiosk` blueprint: the public home page and the health checks."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, redirect, render_template, url_for
from werkzeug.wrappers import Response as BaseResponse

from kiosk import database
from kiosk.citizens.access import load_citizen
from kiosk.keys import KeysMissing, code_key_ring
from kiosk.pii import vault

blueprint = Blueprint("kiosk", __name__)


@blueprint.get("/healthz")
def healthz() -> dict[str, str]:
    # Answers without touching the database so that a load balancer keeps routing to a worker
    # whose process is alive even while the database is briefly unreachable.
    return {"status": "ok"}


@blueprint.get("/readyz")
def readyz() -> tuple[dict[str, object], int]:
    """Ready to serve money: the database answers, its schema is the newest, the keys load."""
    checks: dict[str, str] = {}
    try:
        with database.database().engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        script = ScriptDirectory.from_config(
            database.alembic_config(current_app.config["DATABASE_URL"])
        )
        head = script.get_current_head()
        checks["database"] = "ok"
        checks["migrations"] = "ok" if current == head else f"at {current}, head is {head}"
    except Exception as error:  # any failure means "not ready"; its type is shown
        checks["database"] = f"unreachable ({type(error).__name__})"
    try:
        vault()
        code_key_ring()
        checks["keys"] = "ok"
    except KeysMissing as error:
        checks["keys"] = str(error)
    ready = all(value == "ok" for value in checks.values()) and len(checks) == 3
    return {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503


@blueprint.get("/")
def home() -> str | BaseResponse:
    # The site's name links here from every page: a signed-in citizen goes back to the wallet,
    # not to a welcome page that offers to sign in.
    if load_citizen() is not None:
        return redirect(url_for("wallet.home"), code=303)
    return render_template("kiosk/home.html")
