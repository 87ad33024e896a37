"""Languages: Vietnamese first, English second (Flask-Babel).

Message ids are the Vietnamese text itself, so a string without an English translation still
shows correct Vietnamese. The choice is kept in the session; `?lang=` is not used, so that a link
cannot switch someone's language.
"""

from __future__ import annotations

from flask import Blueprint, Flask, has_request_context, redirect, request, session, url_for
from flask_babel import Babel  # type: ignore[import-untyped]
from werkzeug.wrappers import Response

from kiosk.security import local_path

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"

babel = Babel()
blueprint = Blueprint("i18n", __name__)


def selected_language() -> str:
    if not has_request_context():
        # Command-line tools and background jobs speak the default language.
        return DEFAULT_LANGUAGE
    language = session.get("lang")
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


@blueprint.post("/ngon-ngu")
def choose_language() -> Response:
    language = request.form.get("lang", "")
    if language in LANGUAGES:
        session["lang"] = language
    target = request.form.get("next", "")
    return redirect(local_path(target) or url_for("kiosk.home"))


def init_app(app: Flask) -> None:
    babel.init_app(
        app,
        locale_selector=selected_language,
        default_locale=DEFAULT_LANGUAGE,
        default_timezone="Asia/Ho_Chi_Minh",
    )
    app.register_blueprint(blueprint)
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["current_language"] = selected_language
