"""Authorization matrix: every route x every role x own / other object, from the route map.

The routes come from `app.url_map` (every blueprint, /api/v1 included); what each may do is the
matrix in `tests/proofs/authz_matrix.py`: per endpoint, the roles that may succeed on the "own"
object (the one the principal roles own: citizen A's code, post office P's receipt, commune
00226's household) and on the "other" object (another citizen's, another post office's,
another commune's), and how to fill the URL's arguments and the body. An endpoint in the route
map without a matrix entry fails the run, so a new route cannot be added without saying who may
use it.

Every cell is one request with Flask's test client on one app over a migrated SQLite database
(CSRF on: POSTs carry a valid token of the caller's session), made by a principal signed in as a
real session (citizens, agents and officials: a row in `web_sessions`; API callers: a bearer
credential). A cell *succeeds* when the answer is 2xx or a redirect to somewhere other than a
sign-in, TOTP, step-up or enrolment page. An unauthorised success is a success of a role the
matrix does not allow: the claim is that there are none. A GET of an allowed role on its own
object must also succeed (unless the entry says the check does not apply).

Figures: `authz_endpoints`, `authz_endpoints_without_entry` (0), `authz_cells`,
`authz_cells_checked`, `authz_unauthorised_successes` (0), `authz_allowed_refused` (0),
`authz_server_errors` (0).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from bench import common
from bench.common import log

CLAIM = (
    "Every route of the route map, tried by every role (citizens, agents, supervisors, officials "
    "of every level and place, API credentials with and without scope) on its own and on "
    "another's objects: no role the authorization matrix does not allow ever succeeds, and "
    "every route has a matrix entry."
)

SECRET_KEY = "authz-matrix-secret-key-that-is-long-enough"  # noqa: S105 - a throwaway app
PASSWORD = "mây trắng bay trên núi"  # noqa: S105 - the throwaway principals' password
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105
PIN = "246810"
COMMUNE = "00226"  # Phường Văn Miếu - Quốc Tử Giám, province 01
OTHER_COMMUNE = "00004"  # Phường Ba Đình, province 01
PROVINCE = "01"
OTHER_PROVINCE = "04"
OTHER_PROVINCE_COMMUNE = "01273"  # Phường Thục Phán, province 04
AUTH_PAGES = (
    "/dang-nhap",
    "/xac-thuc-them",
    "/quay/dang-nhap",
    "/quay/xac-thuc",
    "/quay/dang-ky-xac-thuc",
    "/quan-ly/dang-nhap",
    "/quan-ly/xac-thuc",
    "/quan-ly/dang-ky-xac-thuc",
)
SHOWN_MAX = 20


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proofs authz", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--show-cells", action="store_true", help="print every cell's outcome to stderr"
    )
    parser.add_argument(
        "--endpoint", action="append", default=[], help="run only these endpoints (repeatable)"
    )
    return parser


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- The world: principals and their objects ----------------------------------------------------


@dataclass
class Principal:
    """How to act as a role: a web session (kind, id) or an API bearer token."""

    role: str
    kind: str | None = None  # "citizen", "agent", "official", or None (anonymous / API)
    principal_id: int | None = None
    bearer: str | None = None


@dataclass
class World:
    app: Flask
    principals: dict[str, Principal] = field(default_factory=dict)
    # Object name -> {"own": value, "other": value}.
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Secrets the world used (for the privacy proof): citizen ID numbers, PINs, tokens...
    secrets_used: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, FlaskClient] = field(default_factory=dict)
    _csrf: dict[str, str] = field(default_factory=dict)

    def put(self, name: str, own: Any, other: Any) -> None:
        self.objects[name] = {"own": own, "other": other}

    def value(self, name: str, variant: str) -> Any:
        return self.objects[name][variant]

    # Clients: one per role, signed in once; `fresh` gives a new session for one request.
    def client(self, role: str, *, fresh: bool = False) -> tuple[FlaskClient, str]:
        if not fresh and role in self._clients:
            return self._clients[role], self._csrf[role]
        client = self.app.test_client()
        principal = self.principals[role]
        if principal.kind is not None:
            _sign_in(self.app, client, principal)
        token = _csrf_token(self.app, client)
        if not fresh:
            self._clients[role] = client
            self._csrf[role] = token
        return client, token

    def forget_sessions(self) -> None:
        self._clients.clear()
        self._csrf.clear()


@contextlib.contextmanager
def app_session(app: Flask) -> Iterator[Any]:
    from kiosk import database  # noqa: PLC0415

    with app.app_context(), database.database().sessions() as session:
        yield session


def _sign_in(app: Flask, client: FlaskClient, principal: Principal) -> None:
    """A live session, as the sign-in pages leave it: a random token in the cookie, its hash in
    `web_sessions` with the principal's current epoch."""
    from agent_portal.models import Agent  # noqa: PLC0415
    from kiosk.auth.models import WebSession  # noqa: PLC0415
    from kiosk.auth.sessions import COOKIE_FIELD, token_hash  # noqa: PLC0415
    from kiosk.citizens.models import Citizen  # noqa: PLC0415
    from kiosk.community.models import Official  # noqa: PLC0415

    model = {"citizen": Citizen, "agent": Agent, "official": Official}[str(principal.kind)]
    token = secrets.token_urlsafe(32)
    now = utc_now()
    with app_session(app) as session:
        found = session.get(model, principal.principal_id)
        assert found is not None
        session.add(
            WebSession(
                token_hash=token_hash(token),
                principal_kind=principal.kind,
                principal_id=principal.principal_id,
                epoch=found.session_epoch,
                created_at=now,
                last_seen_at=now,
                expires_at=now + dt.timedelta(hours=8),
            )
        )
        session.commit()
    with client.session_transaction() as cookie:
        cookie[COOKIE_FIELD] = token


def _csrf_token(app: Flask, client: FlaskClient) -> str:
    """A valid CSRF token of the client's session, as `flask_wtf.csrf.generate_csrf` makes."""
    from itsdangerous import URLSafeTimedSerializer  # noqa: PLC0415

    raw = hashlib.sha1(os.urandom(64)).hexdigest()  # noqa: S324 - flask_wtf's own recipe
    field_name = app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    with client.session_transaction() as cookie:
        cookie[field_name] = raw
    secret = app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key
    assert secret is not None
    return URLSafeTimedSerializer(secret, salt="wtf-csrf-token").dumps(raw)


def build_app(database_url: str, keys_dir: Path, **overrides: Any) -> Flask:
    from kiosk import create_app  # noqa: PLC0415

    return create_app(
        {
            "TESTING": True,
            "SOFTATM_ENV": "test",
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET_KEY,
            "KEYS_DIR": keys_dir,
            "WTF_CSRF_ENABLED": True,
            **overrides,
        }
    )


@contextlib.contextmanager
def cheap_hashing() -> Iterator[None]:
    """Argon2 at its smallest cost for the principals made here (the cost is not the point)."""
    from argon2 import PasswordHasher  # noqa: PLC0415

    from kiosk.auth import staff  # noqa: PLC0415
    from kiosk.citizens import credentials  # noqa: PLC0415

    saved = staff.PASSWORD_HASHER, credentials.PIN_HASHER
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    staff.PASSWORD_HASHER = cheap
    credentials.PIN_HASHER = cheap
    try:
        yield
    finally:
        staff.PASSWORD_HASHER, credentials.PIN_HASHER = saved


@contextlib.contextmanager
def sqlite_world() -> Iterator[World]:
    """A migrated SQLite database in a temporary directory, the app over it, the world built."""
    from kiosk import database  # noqa: PLC0415
    from kiosk.database import upgrade  # noqa: PLC0415

    directory = Path(tempfile.mkdtemp(prefix="softatm_authz_"))
    try:
        url = f"sqlite:///{directory / 'authz.sqlite3'}"
        upgrade(url)
        app = build_app(url, directory / "keys")
        try:
            with cheap_hashing():
                yield build_world(app)
        finally:
            database.dispose(app)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _citizen(session: Any, world: World, tag: str, commune: str, *, verified: bool = True) -> Any:
    import ledger  # noqa: PLC0415
    from kiosk.citizens.credentials import hash_pin  # noqa: PLC0415
    from kiosk.citizens.models import Citizen, KycTier  # noqa: PLC0415
    from kiosk.pii import vault  # noqa: PLC0415
    from ledger import AccountKind  # noqa: PLC0415

    now = utc_now()
    number = f"0011580{secrets.randbelow(10**5):05d}"
    phone = f"09{secrets.randbelow(10**8):08d}"
    world.secrets_used[f"citizen_id:{tag}"] = number
    world.secrets_used[f"pin:{tag}"] = PIN
    wallet = ledger.open_account(session, kind=AccountKind.CITIZEN_WALLET, name="Ví", now=now)
    citizen = Citizen(
        phone=phone,
        full_name="Hoàng Thị Mai",
        date_of_birth=dt.date(1958, 4, 12),
        sex="female",
        commune_code=commune,
        citizen_id_ciphertext=vault().encrypt(number, purpose="citizen_id"),
        citizen_id_lookup=vault().lookup_hash(number, purpose="citizen_id"),
        citizen_id_last4=number[-4:],
        kyc_tier=KycTier.VERIFIED if verified else KycTier.UNVERIFIED,
        verified_at=now if verified else None,
        verified_by="agent:authz" if verified else None,
        pin_hash=hash_pin(PIN),
        pin_changed_at=now,
        consent_version="authz",
        consent_at=now,
        registered_by="authz",
        wallet_account_id=wallet.id,
        session_epoch=0,
        created_at=now,
    )
    session.add(citizen)
    session.flush()
    wallet.owner_ref = f"citizen:{citizen.id}"
    funding = ledger.open_account(
        session, kind=AccountKind.FUNDING, name="authz funding", owner_ref=str(uuid.uuid4())
    )
    result = ledger.post_transfer(
        session,
        ledger.Post(f"authz-fund:{uuid.uuid4()}", funding.id, wallet.id, 5_000_000, "cash_in"),
        now=now,
    )
    return citizen, result


def _agent(session: Any, post_office: Any, role: Any, *, drawer: bool) -> Any:
    import ledger  # noqa: PLC0415
    from agent_portal import staff  # noqa: PLC0415
    from agent_portal.drawer import Count, start_drawer  # noqa: PLC0415
    from kiosk.auth import totp  # noqa: PLC0415
    from ledger import AccountKind  # noqa: PLC0415

    now = utc_now()
    agent = staff.create_agent(
        session,
        post_office=post_office,
        username=f"authz.{secrets.token_hex(4)}",
        full_name="Nguyễn Thị Lan",
        password=PASSWORD,
        role=role,
        created_by="admin",
        now=now,
    )
    agent.totp_secret_ciphertext = totp.encrypt_secret(TOTP_SECRET)
    agent.totp_enrolled_at = now
    session.flush()
    if drawer:
        source = ledger.open_account(
            session, kind=AccountKind.SETTLEMENT, name="authz float", owner_ref=str(uuid.uuid4())
        )
        ledger.post_transfer(
            session,
            ledger.Post(
                f"authz-float:{uuid.uuid4()}",
                agent.drawer_account_id,
                source.id,
                50_000_000,
                "float_top_up",
            ),
            now=now,
        )
        start_drawer(session, agent, Count(50_000_000, None), now)
    return agent


def _official(
    session: Any,
    role: Any,
    *,
    commune: str | None = None,
    province: str | None = None,
    villages: Sequence[int] = (),
) -> Any:
    from kiosk.auth.staff import enrol_known_secret  # noqa: PLC0415
    from kiosk.community.staff import assign_villages, create_official  # noqa: PLC0415

    official = create_official(
        session,
        username=f"authz.{secrets.token_hex(4)}",
        full_name="Nguyễn Thị Hoa",
        password=PASSWORD,
        role=role,
        commune_code=commune,
        province_code=province,
        created_by="admin",
    )
    if villages:
        assign_villages(session, official, villages, assigned_by="admin")
    enrol_known_secret(official, TOTP_SECRET, utc_now())
    session.flush()
    return official


def _household(session: Any, world: World, tag: str, village: Any, official: Any) -> Any:
    from kiosk.community.models import Household, Person  # noqa: PLC0415
    from kiosk.pii import vault  # noqa: PLC0415

    now = utc_now()
    household = Household(
        id=uuid.uuid4(),
        commune_code=village.commune_code,
        village_id=village.id,
        head_name="Lê Văn Ba",
        address="Số 1 ngõ 2",
        created_at=now,
        created_by=official.id,
    )
    session.add(household)
    session.flush()
    number = f"0010600{secrets.randbelow(10**5):05d}"
    world.secrets_used[f"citizen_id:person:{tag}"] = number
    person = Person(
        id=uuid.uuid4(),
        household_id=household.id,
        commune_code=village.commune_code,
        full_name="Lê Văn Ba",
        date_of_birth=dt.date(1960, 1, 1),
        birth_year=1960,
        sex="male",
        citizen_id_lookup=vault().lookup_hash(number, purpose="citizen_id"),
        citizen_id_last4=number[-4:],
        welfare_beneficiary=True,
        consent_at=now,
        created_at=now,
        created_by=official.id,
    )
    session.add(person)
    session.flush()
    return household, person


def build_world(app: Flask) -> World:
    """Every principal of the matrix's roles and the objects they own (see the module's doc)."""
    import ledger  # noqa: PLC0415
    from agent_portal import counter, staff  # noqa: PLC0415
    from agent_portal import drawer as drawers  # noqa: PLC0415
    from agent_portal.counter_views import TICKET_SALT  # noqa: PLC0415
    from agent_portal.models import Role  # noqa: PLC0415
    from kiosk.api import credentials  # noqa: PLC0415
    from kiosk.api.views import TICKET_SALT as API_TICKET_SALT  # noqa: PLC0415
    from kiosk.community.models import OfficialRole, Village  # noqa: PLC0415
    from kiosk.payments import codes, merchants  # noqa: PLC0415
    from kiosk.welfare import cycles  # noqa: PLC0415
    from ledger import AccountKind  # noqa: PLC0415

    world = World(app)
    now = utc_now()
    with app.test_request_context(), app_session(app) as session:
        # Citizens: A (the role "citizen") in commune 00226, B ("other_citizen") in province 04.
        citizen_a, fund_a = _citizen(session, world, "a", COMMUNE)
        citizen_b, fund_b = _citizen(session, world, "b", OTHER_PROVINCE_COMMUNE)
        unverified_a, _ = _citizen(session, world, "ua", COMMUNE, verified=False)
        unverified_b, _ = _citizen(session, world, "ub", OTHER_PROVINCE_COMMUNE, verified=False)
        world.principals["citizen"] = Principal("citizen", "citizen", citizen_a.id)
        world.principals["other_citizen"] = Principal("other_citizen", "citizen", citizen_b.id)
        world.put("citizen", citizen_a.id, citizen_b.id)
        world.put("unverified_citizen", unverified_a.id, unverified_b.id)
        world.put("wallet_transfer", fund_a.id, fund_b.id)
        code_a = codes.create_withdrawal_code(session, citizen_a, 500_000, now)
        code_b = codes.create_withdrawal_code(session, citizen_b, 500_000, now)
        world.secrets_used["token:code_a"] = code_a.token
        world.secrets_used["token:code_b"] = code_b.token
        world.put("code", code_a.record.id, code_b.record.id)
        stall_a = merchants.register_stall(session, citizen_a, "Hàng rau cô Mai", now)
        stall_b = merchants.register_stall(session, citizen_b, "Hàng cá cô Lan", now)
        world.put("stall", stall_a.stall_code, stall_b.stall_code)
        world.put("phone", citizen_a.phone, citizen_b.phone)

        # Post offices P (agent, supervisor) and Q (other agent, other supervisor).
        office_p = staff.create_post_office(
            session, code=f"AZP{secrets.token_hex(3)}", name="Điểm P", commune_code=COMMUNE, now=now
        )
        office_q = staff.create_post_office(
            session,
            code=f"AZQ{secrets.token_hex(3)}",
            name="Điểm Q",
            commune_code=OTHER_COMMUNE,
            now=now,
        )
        agent = _agent(session, office_p, Role.AGENT, drawer=True)
        supervisor = _agent(session, office_p, Role.SUPERVISOR, drawer=False)
        other_agent = _agent(session, office_q, Role.AGENT, drawer=True)
        other_supervisor = _agent(session, office_q, Role.SUPERVISOR, drawer=False)
        target_p = _agent(session, office_p, Role.AGENT, drawer=False)
        target_q = _agent(session, office_q, Role.AGENT, drawer=False)
        for role, member in (
            ("agent", agent),
            ("supervisor", supervisor),
            ("other_agent", other_agent),
            ("other_supervisor", other_supervisor),
        ):
            world.principals[role] = Principal(role, "agent", member.id)
        world.put("agent", target_p.id, target_q.id)
        drawer_p = drawers.unclosed_drawer(session, agent)
        drawer_q = drawers.unclosed_drawer(session, other_agent)
        assert drawer_p is not None and drawer_q is not None
        world.put("drawer", drawer_p.id, drawer_q.id)
        paid = []
        for member, office, drawer, citizen in (
            (agent, office_p, drawer_p, citizen_a),
            (other_agent, office_q, drawer_q, citizen_b),
        ):
            paid.append(
                counter.cash_in(
                    session,
                    agent=member,
                    post_office=office,
                    drawer=drawer,
                    citizen=citizen,
                    amount=100_000,
                    request_id=uuid.uuid4(),
                    fees=app.config["FEE_SCHEDULE"],
                    transaction_max_vnd=app.config["TRANSACTION_MAX_VND"],
                    wallet_balance_max_vnd=app.config["WALLET_BALANCE_MAX_VND"],
                    now=now,
                ).operation.id
            )
        world.put("operation", paid[0], paid[1])
        approvals = [
            counter.request_payout_approval(session, code_a.record, agent, now).id,
            counter.request_payout_approval(session, code_b.record, other_agent, now).id,
        ]
        world.put("approval", approvals[0], approvals[1])
        from itsdangerous import URLSafeTimedSerializer  # noqa: PLC0415

        tickets = URLSafeTimedSerializer(SECRET_KEY, salt=TICKET_SALT)
        world.put(
            "ticket",
            tickets.dumps({"code": str(code_a.record.id), "agent": agent.id, "via": "scan"}),
            tickets.dumps({"code": str(code_b.record.id), "agent": other_agent.id, "via": "scan"}),
        )

        # Officials: commune C = 00226 (villages V1, V1b), C2 = 00004 (village V3).
        villages = []
        for commune, name in (
            (COMMUNE, "Thôn Một"),
            (COMMUNE, "Thôn Hai"),
            (OTHER_COMMUNE, "Thôn Ba"),
        ):
            village = Village(commune_code=commune, name=name, created_at=now, created_by="admin")
            session.add(village)
            villages.append(village)
        session.flush()
        v1, v1b, v3 = villages
        world.put("village", v1.id, v3.id)
        officials = {
            "team_member": _official(
                session, OfficialRole.TEAM_MEMBER, commune=COMMUNE, villages=[v1.id]
            ),
            "other_team_member": _official(
                session, OfficialRole.TEAM_MEMBER, commune=COMMUNE, villages=[v1b.id]
            ),
            "commune_official": _official(session, OfficialRole.COMMUNE_OFFICIAL, commune=COMMUNE),
            "other_commune_official": _official(
                session, OfficialRole.COMMUNE_OFFICIAL, commune=OTHER_COMMUNE
            ),
            "province_official": _official(
                session, OfficialRole.PROVINCE_OFFICIAL, province=PROVINCE
            ),
            "other_province_official": _official(
                session, OfficialRole.PROVINCE_OFFICIAL, province=OTHER_PROVINCE
            ),
            "admin": _official(session, OfficialRole.ADMIN),
        }
        for role, official in officials.items():
            world.principals[role] = Principal(role, "official", official.id)
        target_c = _official(session, OfficialRole.TEAM_MEMBER, commune=COMMUNE, villages=[v1.id])
        target_c2 = _official(
            session, OfficialRole.TEAM_MEMBER, commune=OTHER_COMMUNE, villages=[v3.id]
        )
        world.put("official", target_c.id, target_c2.id)
        household_c, person_c = _household(session, world, "c", v1, officials["commune_official"])
        household_c2, person_c2 = _household(
            session, world, "c2", v3, officials["other_commune_official"]
        )
        world.put("household", household_c.id, household_c2.id)
        world.put("person", person_c.id, person_c2.id)
        world.put("commune", COMMUNE, OTHER_COMMUNE)
        world.put("province", PROVINCE, OTHER_PROVINCE)
        programmes = []
        cycle_ids = []
        for commune in (COMMUNE, OTHER_COMMUNE):
            programme = cycles.create_programme(
                session, commune_code=commune, name="Trợ cấp xã hội", by="official:1", now=now
            )
            cycles.record_funding(
                session,
                programme,
                amount=10_000_000,
                reference="Lệnh chi 1",
                request_id=uuid.uuid4(),
                now=now,
            )
            cycle = cycles.create_cycle(
                session,
                programme,
                label="Tháng 1",
                voucher_validity_days=30,
                by="official:1",
                now=now,
            )
            programmes.append(programme.id)
            cycle_ids.append(cycle.id)
        world.put("programme", programmes[0], programmes[1])
        world.put("cycle", cycle_ids[0], cycle_ids[1])

        # API credentials: a system with every scope limited to commune 00226, a system with only
        # the indicators' scope (no other), the agent's device (and the other agent's, whose
        # tickets are "other").
        all_scopes = [scope.value for scope in credentials.Scope]
        _c, system_token = credentials.create_for_system(
            session,
            "authz-system",
            scopes=all_scopes,
            commune_code=COMMUNE,
            created_by="admin",
            now=now,
        )
        _c, bare_token = credentials.create_for_system(
            session,
            "authz-bare",
            scopes=[credentials.Scope.INDICATORS_READ.value],
            commune_code=COMMUNE,
            created_by="admin",
            now=now,
        )
        agent_credential, agent_token = credentials.create_for_agent(
            session, agent, name="authz device", created_by="admin", now=now
        )
        other_credential, _other_token = credentials.create_for_agent(
            session, other_agent, name="authz other device", created_by="admin", now=now
        )
        world.principals["api_system"] = Principal("api_system", bearer=system_token)
        world.principals["api_system_other_scope"] = Principal(
            "api_system_other_scope", bearer=bare_token
        )
        world.principals["api_agent"] = Principal("api_agent", bearer=agent_token)
        world.secrets_used["api:system"] = system_token
        world.secrets_used["api:bare"] = bare_token
        world.secrets_used["api:agent"] = agent_token
        api_tickets = URLSafeTimedSerializer(SECRET_KEY, salt=API_TICKET_SALT)
        world.put(
            "api_ticket",
            api_tickets.dumps({"code": str(code_a.record.id), "credential": agent_credential.id}),
            api_tickets.dumps({"code": str(code_b.record.id), "credential": other_credential.id}),
        )
        world.put("code_token", code_a.token, code_b.token)
        world.put("last4", citizen_a.citizen_id_last4, citizen_b.citizen_id_last4)
        biller_account = ledger.open_account(
            session, kind=AccountKind.BILLER, name="Điện lực", owner_ref=f"biller:{uuid.uuid4()}"
        )
        from kiosk.payments.models import Biller, BillerKind  # noqa: PLC0415

        biller = Biller(name="Điện lực", kind=BillerKind.ELECTRICITY, account_id=biller_account.id)
        session.add(biller)
        session.flush()
        world.put("biller", biller.id, biller.id)
        session.commit()
    world.principals["anonymous"] = Principal("anonymous")
    return world


# --- The cells ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    endpoint: str
    method: str
    role: str
    variant: str  # "own", "other", or "-" when the route names no object
    path: str
    allowed: bool


@dataclass
class Outcome:
    cell: Cell
    status: int
    location: str | None
    succeeded: bool


def _succeeded(status: int, location: str | None) -> bool:
    if 200 <= status < 300:
        return True
    if status in (301, 302, 303, 307, 308):
        from urllib.parse import urlsplit  # noqa: PLC0415

        path = urlsplit(location or "").path
        return not any(path == page or path == page + "/" for page in AUTH_PAGES)
    return False


def endpoints_of(app: Flask) -> dict[str, list[Any]]:
    """Endpoint -> its rules (one endpoint may have several)."""
    found: dict[str, list[Any]] = {}
    for rule in app.url_map.iter_rules():
        found.setdefault(rule.endpoint, []).append(rule)
    return found


def methods_of(rule: Any) -> list[str]:
    return sorted(set(rule.methods or ()) - {"HEAD", "OPTIONS"})


def _fill(value: Any, world: World, variant: str) -> Any:
    from tests.proofs.authz_matrix import Obj  # noqa: PLC0415

    if isinstance(value, Obj):
        return world.value(value.name, "own" if variant == "-" else variant)
    if isinstance(value, dict):
        return {key: _fill(item, world, variant) for key, item in value.items()}
    return value


def run_cell(
    world: World, rule: Any, method: str, role: str, *, variant: str, entry: Any
) -> Outcome:
    args = _fill(entry.args, world, variant)
    built = rule.build(args, append_unknown=False)
    assert built is not None, f"cannot build {rule.rule} from {args}"
    path = built[1]
    query = entry.query
    cell = Cell(rule.endpoint, method, role, variant, path, role in entry.allowed(variant, method))
    principal = world.principals[role]
    client, csrf = world.client(role, fresh=entry.fresh_session)
    headers: dict[str, str] = {}
    if principal.bearer is not None:
        headers["Authorization"] = f"Bearer {principal.bearer}"
    kwargs: dict[str, Any] = {"headers": headers}
    if query:
        kwargs["query_string"] = _fill(query, world, variant)
    if method != "GET":
        if entry.api:
            headers["Idempotency-Key"] = str(uuid.uuid4())
            kwargs["json"] = _fill(entry.body or {}, world, variant)
        else:
            data = {"csrf_token": csrf, **_fill(entry.body or {}, world, variant)}
            kwargs["data"] = data
    response = client.open(path, method=method, **kwargs)
    location = response.headers.get("Location")
    outcome = Outcome(
        cell, response.status_code, location, _succeeded(response.status_code, location)
    )
    response.close()
    if entry.resets_sessions:
        world.forget_sessions()
    return outcome


@dataclass
class Result:
    endpoints: int = 0
    without_entry: list[str] = field(default_factory=list)
    stale_entries: list[str] = field(default_factory=list)
    cells: int = 0
    checked: int = 0
    unauthorised: list[Outcome] = field(default_factory=list)
    allowed_refused: list[Outcome] = field(default_factory=list)
    server_errors: list[Outcome] = field(default_factory=list)


def run_matrix(world: World, *, only: Sequence[str] = (), show: bool = False) -> Result:
    from tests.proofs.authz_matrix import MATRIX, ROLES  # noqa: PLC0415

    result = Result()
    endpoints = endpoints_of(world.app)
    result.endpoints = len(endpoints)
    result.without_entry = sorted(set(endpoints) - set(MATRIX))
    result.stale_entries = sorted(set(MATRIX) - set(endpoints))
    # Cells that end sessions run last, so they do not sign anybody out of the others.
    names = sorted(
        endpoints, key=lambda name: (name in MATRIX and MATRIX[name].resets_sessions, name)
    )
    for name in names:
        if name not in MATRIX or (only and name not in only):
            continue
        entry = MATRIX[name]
        for rule in endpoints[name]:
            for method in methods_of(rule):
                variants = ("own", "other") if entry.has_variants else ("-",)
                for variant in variants:
                    for role in ROLES:
                        result.cells += 1
                        allowed = role in entry.allowed(variant, method)
                        if allowed and method != "GET":
                            # An allowed POST would change the world the other cells stand on.
                            continue
                        outcome = run_cell(world, rule, method, role, variant=variant, entry=entry)
                        result.checked += 1
                        if show:
                            log(
                                f"{name} {method} {outcome.cell.path} {role}/{variant}: "
                                f"{outcome.status} {outcome.location or ''} "
                                f"{'allowed' if allowed else 'refuse'}"
                            )
                        if outcome.status >= 500:
                            result.server_errors.append(outcome)
                        if outcome.succeeded and not allowed:
                            result.unauthorised.append(outcome)
                        elif (
                            allowed
                            and not outcome.succeeded
                            and method == "GET"
                            and variant in ("own", "-")
                            and entry.check_allowed
                        ):
                            result.allowed_refused.append(outcome)
    return result


def describe(outcome: Outcome) -> str:
    cell = outcome.cell
    return (
        f"{cell.method} {cell.path} ({cell.endpoint}) as {cell.role} on {cell.variant}: "
        f"{outcome.status} {outcome.location or ''}".rstrip()
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with sqlite_world() as world:
        log(f"world built: {len(world.principals)} roles; running the matrix")
        result = run_matrix(world, only=args.endpoint, show=args.show_cells)
    common.emit("authz_endpoints", result.endpoints, "endpoints")
    common.emit(
        "authz_endpoints_without_entry",
        len(result.without_entry),
        "endpoints",
        missing=result.without_entry[:SHOWN_MAX],
    )
    common.emit("authz_cells", result.cells, "cells")
    common.emit("authz_cells_checked", result.checked, "cells")
    common.emit(
        "authz_unauthorised_successes",
        len(result.unauthorised),
        "cells",
        first=[describe(o) for o in result.unauthorised[:SHOWN_MAX]],
    )
    common.emit(
        "authz_allowed_refused",
        len(result.allowed_refused),
        "cells",
        first=[describe(o) for o in result.allowed_refused[:SHOWN_MAX]],
    )
    common.emit(
        "authz_server_errors",
        len(result.server_errors),
        "cells",
        first=[describe(o) for o in result.server_errors[:SHOWN_MAX]],
    )
    for outcome in result.unauthorised:
        log(f"UNAUTHORISED SUCCESS: {describe(outcome)}")
    ok = not (
        result.without_entry
        or result.stale_entries
        or result.unauthorised
        or result.allowed_refused
        or result.server_errors
    )
    if result.stale_entries:
        log(f"matrix entries for endpoints that no longer exist: {result.stale_entries}")
    log(f"authz: {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1
