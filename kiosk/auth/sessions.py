"""Server-side web sessions: sign in, sign out, and the checks every signed-in request passes.

The browser's cookie (Flask's signed session) holds only a random token; the database holds its
SHA-256 with the principal, an idle and an absolute deadline, and a revocation time. So signing
out, changing a PIN or deactivating an agent ends sessions everywhere at once (OWASP ASVS 5.0 V7).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

from flask import g, redirect, request, session, url_for
from sqlalchemy import update
from sqlalchemy.orm import Session

from kiosk.auth.models import WebSession
from kiosk.security import mark_no_store

SESSION_TOKEN_BYTES = 32
LAST_SEEN_RESOLUTION = dt.timedelta(minutes=1)
COOKIE_FIELD = "sid"


@dataclass(frozen=True)
class SessionPolicy:
    idle_s: int
    absolute_s: int


# Citizens on a shared family phone: short idle time. Agents and officials get their own in
# their blueprints (agents: idle ≤ 15 minutes, absolute ≤ 8 hours).
CITIZEN_POLICY = SessionPolicy(idle_s=10 * 60, absolute_s=12 * 60 * 60)

P = ParamSpec("P")
R = TypeVar("R")


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sign_in(
    db: Session,
    *,
    principal_kind: str,
    principal_id: int,
    epoch: int,
    policy: SessionPolicy,
    now: dt.datetime | None = None,
) -> WebSession:
    """Start a session; the old cookie content is dropped first (no session fixation)."""
    now = now or utc_now()
    session.clear()
    token = secrets.token_urlsafe(SESSION_TOKEN_BYTES)
    web_session = WebSession(
        token_hash=token_hash(token),
        principal_kind=principal_kind,
        principal_id=principal_id,
        epoch=epoch,
        created_at=now,
        last_seen_at=now,
        expires_at=now + dt.timedelta(seconds=policy.absolute_s),
    )
    db.add(web_session)
    db.flush()
    session[COOKIE_FIELD] = token
    return web_session


def current_session(
    db: Session,
    *,
    principal_kind: str,
    epoch_of: Callable[[int], int | None],
    policy: SessionPolicy,
    now: dt.datetime | None = None,
) -> WebSession | None:
    """The request's live session for this kind of principal, touched; None when there is none.

    `epoch_of(principal_id)` returns the principal's current session epoch, or None when the
    principal no longer exists or is deactivated.
    """
    token = session.get(COOKIE_FIELD)
    if not isinstance(token, str):
        return None
    now = now or utc_now()
    web_session = db.get(WebSession, token_hash(token))
    if web_session is None or web_session.principal_kind != principal_kind:
        return None
    idle_deadline = web_session.last_seen_at + dt.timedelta(seconds=policy.idle_s)
    if (
        web_session.revoked_at is not None
        or now >= web_session.expires_at
        or now >= idle_deadline
        or epoch_of(web_session.principal_id) != web_session.epoch
    ):
        if web_session.revoked_at is None:
            web_session.revoked_at = now
        session.pop(COOKIE_FIELD, None)
        return None
    # Written at most once a minute: the idle deadline moves in whole minutes, and a busy
    # counter's every request does not rewrite its session row.
    if now - web_session.last_seen_at >= LAST_SEEN_RESOLUTION:
        web_session.last_seen_at = now
    return web_session


class Principal(Protocol):
    session_epoch: int


PrincipalT = TypeVar("PrincipalT", bound=Principal)


def signed_in(
    db: Session,
    model: type[PrincipalT],
    *,
    principal_kind: str,
    policy: SessionPolicy,
    usable: Callable[[PrincipalT], bool] = lambda _principal: True,
) -> tuple[WebSession, PrincipalT] | None:
    """The request's live session and its principal (a row of ``model``), or None.

    ``usable`` refuses a principal that exists but may not sign in now (a deactivated agent).
    """
    # The identity map holds objects weakly: keep the row read for the epoch check.
    loaded: list[PrincipalT] = []

    def epoch_of(principal_id: int) -> int | None:
        found = db.get(model, principal_id)
        if found is None or not usable(found):
            return None
        loaded.append(found)
        return found.session_epoch

    web_session = current_session(
        db, principal_kind=principal_kind, epoch_of=epoch_of, policy=policy
    )
    if web_session is None or not loaded:
        return None
    return web_session, loaded[0]


def sign_out(db: Session, now: dt.datetime | None = None) -> None:
    token = session.get(COOKIE_FIELD)
    if isinstance(token, str):
        web_session = db.get(WebSession, token_hash(token))
        if web_session is not None and web_session.revoked_at is None:
            web_session.revoked_at = now or utc_now()
    session.clear()


def revoke_all(
    db: Session, *, principal_kind: str, principal_id: int, now: dt.datetime | None = None
) -> None:
    """End every session of a principal (PIN or password change, deactivation)."""
    db.execute(
        update(WebSession)
        .where(
            WebSession.principal_kind == principal_kind,
            WebSession.principal_id == principal_id,
            WebSession.revoked_at.is_(None),
        )
        .values(revoked_at=now or utc_now())
    )


def mark_stepped_up(web_session: WebSession, now: dt.datetime | None = None) -> None:
    web_session.step_up_at = now or utc_now()


def stepped_up_within(web_session: WebSession, seconds: int, now: dt.datetime) -> bool:
    return web_session.step_up_at is not None and now - web_session.step_up_at < dt.timedelta(
        seconds=seconds
    )


def require(
    load: Callable[[], Any | None], sign_in_endpoint: str
) -> Callable[[Callable[P, R]], Callable[P, R | Any]]:
    """Decorator factory: run `load()` (which sets g.* and returns the principal or None); send
    anonymous visitors to the sign-in page, coming back here afterwards."""

    def decorator(view: Callable[P, R]) -> Callable[P, R | Any]:
        @functools.wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | Any:
            if load() is None:
                target = None
                if request.method == "GET":
                    target = request.full_path if request.query_string else request.path
                return redirect(url_for(sign_in_endpoint, next=target))
            mark_no_store()
            return view(*args, **kwargs)

        return wrapped

    return decorator


def current_principal() -> Any:
    return g.get("principal")
