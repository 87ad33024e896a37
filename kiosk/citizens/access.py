"""Who is the signed-in citizen: the `citizen_required` decorator and `current_citizen()`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import g

from kiosk.auth.sessions import CITIZEN_POLICY, require, signed_in
from kiosk.citizens.models import Citizen
from kiosk.database import get_session

P = ParamSpec("P")
R = TypeVar("R")
SIGN_IN_ENDPOINT = "citizens.sign_in"


def load_citizen() -> Citizen | None:
    """Set g.citizen and g.web_session for a live citizen session; None when signed out."""
    if "citizen" in g:
        citizen: Citizen | None = g.citizen
        return citizen
    found = signed_in(get_session(), Citizen, principal_kind="citizen", policy=CITIZEN_POLICY)
    g.web_session, g.citizen = (None, None) if found is None else found
    return g.citizen  # type: ignore[no-any-return]


def citizen_required(view: Callable[P, R]) -> Callable[P, R | Any]:
    return require(load_citizen, SIGN_IN_ENDPOINT)(view)


def current_citizen() -> Citizen:
    """The signed-in citizen (only inside a view wrapped by `citizen_required`)."""
    citizen: Citizen | None = g.get("citizen")
    assert citizen is not None, "current_citizen() outside citizen_required"
    return citizen
