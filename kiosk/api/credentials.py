"""API credentials: making and revoking them, and knowing who calls from the Authorization
header.

A credential is ``<id>.<secret>``: the id is public (it names the row), the secret is 32 random
bytes shown once, at creation, and stored only as its SHA-256. A credential is bound either to
an agent — it then acts exactly as that agent at the counter (own post office, own drawer, the
same limits and approvals) and stops working when the agent is deactivated — or to a system,
with scopes and a place (a commune, a province, or the whole country) that mirror the officials'
roles of `kiosk.community.access`:

| system reach      | like               | reads                              |
|-------------------|--------------------|------------------------------------|
| one commune       | commune official   | that commune                       |
| one province      | province official  | the communes of that province      |
| none given        | admin              | every commune                      |

Failed attempts are counted in the database (`kiosk.auth.throttles`), per credential id for a
wrong secret and per client address for an unknown id, so a guesser is stopped across every
gunicorn worker.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_portal.models import Agent, PostOffice
from kiosk.api.models import CREDENTIAL_ID_LENGTH_CHARS, ApiCredential
from kiosk.auth.throttles import Locked, ThrottlePolicy, count_attempt, locked_until
from kiosk.places.models import Commune, Province

CREDENTIAL_ID_PREFIX = "sa_"
SECRET_BYTES = 32
AUTHORIZATION_LENGTH_MAX_CHARS = 200
# A wrong secret 10 times in an hour locks the credential id for 15 minutes; unknown ids from
# one address likewise. A real secret cannot be guessed; this keeps the noise out of the logs
# and the database.
API_AUTH_POLICY = ThrottlePolicy(attempts_max=10, window_s=3600, lock_s=15 * 60)
_DUMMY_HASH = hashlib.sha256(b"no such credential").digest()


class Scope(enum.StrEnum):
    INDICATORS_READ = "indicators:read"
    WELFARE_READ = "welfare:read"
    WALLET_READ = "wallet:read"
    CODES_CREATE = "codes:create"


class CredentialRefused(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthFailure(Exception):
    """Why a request is not authenticated: ``code`` is a problem code of `kiosk.api.problems`."""

    def __init__(self, code: str, until: dt.datetime | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.until = until


@dataclass(frozen=True)
class Caller:
    """Who calls: the credential, and for an agent's credential the agent and its post office."""

    credential: ApiCredential
    agent: Agent | None
    post_office: PostOffice | None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.credential.scopes.split())

    @property
    def principal(self) -> str:
        return self.agent.principal if self.agent is not None else self.credential.principal


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _new_id() -> str:
    return CREDENTIAL_ID_PREFIX + secrets.token_hex(
        (CREDENTIAL_ID_LENGTH_CHARS - len(CREDENTIAL_ID_PREFIX)) // 2
    )


def create_for_agent(
    session: Session, agent: Agent, *, name: str, created_by: str, now: dt.datetime
) -> tuple[ApiCredential, str]:
    """A credential acting as ``agent``; returns it and the bearer token (shown once)."""
    if not agent.active:
        raise CredentialRefused("agent is not active")
    return _create(session, name=name, agent_id=agent.id, created_by=created_by, now=now)


def create_for_system(
    session: Session,
    system_name: str,
    *,
    scopes: list[str],
    commune_code: str | None = None,
    province_code: str | None = None,
    name: str | None = None,
    created_by: str,
    now: dt.datetime,
) -> tuple[ApiCredential, str]:
    """A credential for a system (a bank's core, a reporting server) with ``scopes``."""
    system_name = system_name.strip()
    if not system_name or len(system_name) > 64:
        raise CredentialRefused("system name must be 1 to 64 characters")
    unknown = sorted(set(scopes) - {scope.value for scope in Scope})
    if unknown or not scopes:
        raise CredentialRefused(
            f"unknown or no scopes {unknown}; known: {', '.join(scope.value for scope in Scope)}"
        )
    if commune_code is not None and province_code is not None:
        raise CredentialRefused("give a commune or a province, not both")
    if commune_code is not None and session.get(Commune, commune_code) is None:
        raise CredentialRefused(f"no commune {commune_code}")
    if province_code is not None and session.get(Province, province_code) is None:
        raise CredentialRefused(f"no province {province_code}")
    return _create(
        session,
        name=name or system_name,
        system_name=system_name,
        scopes=" ".join(sorted(set(scopes))),
        commune_code=commune_code,
        province_code=province_code,
        created_by=created_by,
        now=now,
    )


def _create(
    session: Session,
    *,
    name: str,
    created_by: str,
    now: dt.datetime,
    agent_id: int | None = None,
    system_name: str | None = None,
    scopes: str = "",
    commune_code: str | None = None,
    province_code: str | None = None,
) -> tuple[ApiCredential, str]:
    secret = secrets.token_urlsafe(SECRET_BYTES)
    credential = ApiCredential(
        id=_new_id(),
        name=name[:100],
        secret_hash=secret_hash(secret),
        agent_id=agent_id,
        system_name=system_name,
        scopes=scopes,
        commune_code=commune_code,
        province_code=province_code,
        created_at=now,
        created_by=created_by,
        revoked_at=None,
    )
    session.add(credential)
    session.flush()
    return credential, f"{credential.id}.{secret}"


def revoke(session: Session, credential_id: str, now: dt.datetime) -> ApiCredential:
    credential = session.get(ApiCredential, credential_id)
    if credential is None:
        raise CredentialRefused(f"no credential {credential_id}")
    if credential.revoked_at is None:
        credential.revoked_at = now
        session.flush()
    return credential


def _split(authorization: str) -> tuple[str, str] | None:
    """(id, secret) from ``Bearer <id>.<secret>`` or HTTP Basic (id as user, secret as password)."""
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        credential_id, dot, secret = value.partition(".")
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        credential_id, dot, secret = decoded.partition(":")
    else:
        return None
    if not dot or not credential_id or not secret:
        return None
    return credential_id, secret


def authenticate(
    session: Session, authorization: str | None, client_address: str, now: dt.datetime
) -> Caller:
    """The caller named by an Authorization header, or `AuthFailure`."""
    if not authorization:
        raise AuthFailure("credential-missing")
    parts = _split(authorization) if len(authorization) <= AUTHORIZATION_LENGTH_MAX_CHARS else None
    if parts is None:
        raise AuthFailure("credential-invalid")
    credential_id, secret = parts
    credential = (
        session.get(ApiCredential, credential_id)
        if len(credential_id) <= CREDENTIAL_ID_LENGTH_CHARS
        else None
    )
    throttle_key = (
        f"api-address:{client_address}" if credential is None else f"api-credential:{credential.id}"
    )
    until = locked_until(session, throttle_key, now)
    if until is not None:
        raise AuthFailure("too-many-attempts", until)
    # Always one comparison, so an unknown id costs the same as a wrong secret.
    stored = _DUMMY_HASH if credential is None else credential.secret_hash
    matches = hmac.compare_digest(stored, secret_hash(secret))
    if credential is None or not matches:
        try:
            count_attempt(session, throttle_key, API_AUTH_POLICY, now)
        except Locked as locked:
            raise AuthFailure("too-many-attempts", locked.until) from None
        raise AuthFailure("credential-invalid")
    if credential.revoked_at is not None:
        raise AuthFailure("credential-revoked")
    if credential.agent_id is None:
        return Caller(credential, None, None)
    agent = session.get(Agent, credential.agent_id)
    if agent is None or not agent.active:
        raise AuthFailure("credential-revoked")
    return Caller(credential, agent, session.get(PostOffice, agent.post_office_id))


def can_see_commune(session: Session, caller: Caller, commune_code: str) -> bool:
    """A system's reach (see the table above); an agent's credential reads no commune's data."""
    credential = caller.credential
    if caller.agent is not None:
        return False
    if credential.commune_code is not None:
        return credential.commune_code == commune_code
    if credential.province_code is not None:
        province_code = session.scalar(
            select(Commune.province_code).where(Commune.code == commune_code)
        )
        return province_code is not None and province_code == credential.province_code
    return True


def list_credentials(session: Session, *, limit: int = 1000) -> list[ApiCredential]:
    return list(
        session.scalars(select(ApiCredential).order_by(ApiCredential.created_at).limit(limit))
    )
