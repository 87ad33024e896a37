"""Who is at the counter: `agent_required`, `supervisor_required` and `current_agent()`.

A session exists only after the password *and* a TOTP code (see `agent_portal.auth_views`);
it ends after 15 idle minutes, 8 hours, sign-out, a password or TOTP change and deactivation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import abort, g

from agent_portal.models import Agent, PostOffice
from agent_portal.staff import AGENT_POLICY, PRINCIPAL_KIND
from kiosk.auth.sessions import require, signed_in
from kiosk.database import get_session

P = ParamSpec("P")
R = TypeVar("R")
SIGN_IN_ENDPOINT = "agent_auth.sign_in"


def load_agent() -> Agent | None:
    """Set g.agent, g.post_office and g.web_session for a live agent session; None otherwise."""
    if "agent" in g:
        agent: Agent | None = g.agent
        return agent
    db = get_session()
    found = signed_in(
        db,
        Agent,
        principal_kind=PRINCIPAL_KIND,
        policy=AGENT_POLICY,
        usable=lambda agent: agent.active and agent.totp_enrolled_at is not None,
    )
    g.web_session, g.agent = (None, None) if found is None else found
    g.post_office = None if g.agent is None else db.get(PostOffice, g.agent.post_office_id)
    return g.agent  # type: ignore[no-any-return]


def agent_required(view: Callable[P, R]) -> Callable[P, R | Any]:
    """Agents and supervisors alike."""
    return require(load_agent, SIGN_IN_ENDPOINT)(view)


def supervisor_required(view: Callable[P, R]) -> Callable[P, R | Any]:
    @functools.wraps(view)
    def only_supervisors(*args: P.args, **kwargs: P.kwargs) -> R:
        if not current_agent().is_supervisor:
            abort(403)
        return view(*args, **kwargs)

    return agent_required(only_supervisors)


def current_agent() -> Agent:
    """The signed-in agent (only inside a view wrapped by `agent_required`)."""
    agent: Agent | None = g.get("agent")
    assert agent is not None, "current_agent() outside agent_required"
    return agent


def current_post_office() -> PostOffice:
    post_office: PostOffice | None = g.get("post_office")
    assert post_office is not None, "current_post_office() outside agent_required"
    return post_office
