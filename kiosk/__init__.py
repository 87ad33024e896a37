"""The Soft ATM web app: `create_app` builds a configured Flask app from the environment.

This module owns the wiring only: configuration, extensions, the database session, security
headers, error pages and blueprints. Each of those lives in its own module.
"""

from collections.abc import Mapping
from pathlib import Path

from flask import Flask

from kiosk import database, errors, formatting, i18n, observability, security, views
from kiosk.config import load as load_config
from kiosk.extensions import csrf

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def create_app(config: Mapping[str, object] | None = None) -> Flask:
    """Build the app. ``config`` replaces settings read from the environment (tests pass
    ``{"TESTING": True, "DATABASE_URL": "sqlite://"}``); see `kiosk.config.load`.

    Raises `kiosk.config.ConfigError` when the configuration cannot run.
    """
    # Load first so that a bad configuration fails before anything connects to anything.
    settings = load_config(config)
    app = Flask(__name__, template_folder=str(TEMPLATES_DIR))
    app.config.update(settings)

    # First: its hooks must run before and after every other extension's (see its init_app).
    observability.init_app(app)
    security.init_body_limits(app)
    csrf.init_app(app)
    database.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    i18n.init_app(app)
    formatting.init_app(app)
    app.register_blueprint(views.blueprint)
    # Imported here: each area imports kiosk's modules, which would make `import kiosk` circular.
    from kiosk.citizens import views as citizen_views  # noqa: PLC0415
    from kiosk.payments import merchant_views  # noqa: PLC0415
    from kiosk.payments import views as code_views  # noqa: PLC0415
    from kiosk.wallet import views as wallet_views  # noqa: PLC0415

    app.register_blueprint(citizen_views.blueprint)
    app.register_blueprint(wallet_views.blueprint)
    app.register_blueprint(code_views.blueprint)
    app.register_blueprint(merchant_views.blueprint)
    import agent_portal  # noqa: PLC0415
    from kiosk import adoption, community, welfare  # noqa: PLC0415

    agent_portal.init_app(app)
    community.init_app(app)
    welfare.init_app(app)
    adoption.init_app(app)
    # Last: its error handler answers /api/v1 paths with problem details, others as before.
    from kiosk import api  # noqa: PLC0415

    api.init_app(app)
    return app
