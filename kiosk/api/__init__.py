"""The integrators' JSON API at /api/v1: per-device credentials, idempotent money-moving POSTs,
RFC 9457 problem details for every error, and an OpenAPI 3.1 document generated from the routes.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # Imported here: the views import kiosk's modules, which import this package's models.
    from kiosk.api import problems, views  # noqa: PLC0415

    app.register_blueprint(views.blueprint)
    problems.init_app(app)
