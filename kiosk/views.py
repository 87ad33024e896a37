"""The `kiosk` blueprint: the public pages every visitor can reach without signing in.

For now that is the home page and the health check; citizens' pages join it as they are built.
"""

from flask import Blueprint, render_template

blueprint = Blueprint("kiosk", __name__)


@blueprint.get("/healthz")
def healthz() -> dict[str, str]:
    # Answers without touching the database so that a load balancer keeps routing to a worker
    # whose process is alive even while the database is briefly unreachable.
    return {"status": "ok"}


@blueprint.get("/")
def home() -> str:
    return render_template("kiosk/home.html")
