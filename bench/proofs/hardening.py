"""Web hardening: CSRF on every state-changing route, security headers on every response, and
brute force stopped across every gunicorn worker.

In-process (the authorization matrix's world, bench/proofs/authz.py, on SQLite with CSRF on):

* every non-GET endpoint outside /api/v1 of the route map is posted, signed in as a role the
  matrix allows, with its plausible body but no CSRF token, and again with the token of another
  session: each must answer 400, and no table of the database may gain or lose a row;
* every GET endpoint is fetched as a role allowed on it, plus an error page, a static file,
  /healthz and /metrics: each answer must carry a Content-Security-Policy whose script sources
  (script-src, else default-src) allow neither 'unsafe-inline' nor 'unsafe-eval' and which says
  frame-ancestors 'none', and X-Content-Type-Options: nosniff; a signed-in page also
  Cache-Control: no-store.

Over HTTP (a scratch PostgreSQL database, gunicorn with the deploy configuration in production
mode and `--workers` workers, as bench/redeem.py starts it): answers carry HSTS and the session
cookie is Secure, HttpOnly and SameSite; then each secret — a citizen's PIN, a PIN-setup code,
an agent's and an official's password, an agent's TOTP code, a withdrawal code's numeric
fallback (typed at a counter), an API credential's secret — is guessed wrong
`--guesses` times through `--connections` connections at once (spread by the kernel over every
worker), then the right secret is tried. A guess that was checked (422/401) beyond the policy's
limit, or a right secret accepted during the lock, counts as got through: the claim is none.
(Officials' TOTP and citizens' TOTP go through the same `kiosk.auth.throttles` counters as the
agents'; welfare voucher numbers are not guessed here.)

Figures: `hardening_csrf_routes`, `hardening_csrf_accepted` (0), `hardening_csrf_db_changes`
(0), `hardening_header_responses`, `hardening_header_failures` (0), `hardening_hsts_missing`
(0), `hardening_cookie_flag_failures` (0), `hardening_bruteforce_targets`,
`hardening_bruteforce_attempts`, `hardening_bruteforce_got_through` (0).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import secrets
import tempfile
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
from sqlalchemy import func, inspect, select, table

from bench import common, redeem
from bench.common import BenchmarkError, log
from bench.proofs import authz

CLAIM = (
    "Every state-changing route refuses a request without a valid CSRF token (400, nothing "
    "changed); every page, error, static file and probe carries a CSP without inline or eval "
    "scripts, frame-ancestors 'none', nosniff (and no-store when signed in, HSTS and secure "
    "cookies in production); wrong PINs, passwords, TOTP codes and API secrets guessed through "
    "many connections to several gunicorn workers are stopped at the limit, and even the right "
    "one is refused during the lock."
)

DEFAULT_WORKERS = 4
DEFAULT_CONNECTIONS = 8
DEFAULT_GUESSES = 24
SHOWN_MAX = 10
DEFAULT_TARGETS = (
    "pin,pin-setup,agent-password,official-password,agent-totp,fallback-code,api-secret"
)
CHECKED = {422, 401}  # the secret was looked at and found wrong
LOCKED = 429
PRODUCTION_PATHS = (
    "/",
    "/healthz",
    "/dang-nhap",
    "/quay/dang-nhap",
    "/khong-co",
    "/static/softatm.css",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proofs hardening", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="gunicorn workers")
    parser.add_argument(
        "--connections", type=int, default=DEFAULT_CONNECTIONS, help="guessing connections"
    )
    parser.add_argument(
        "--guesses", type=int, default=DEFAULT_GUESSES, help="wrong guesses per secret"
    )
    parser.add_argument(
        "--targets",
        default=DEFAULT_TARGETS,
        help="comma-separated secrets to guess (default: all)",
    )
    parser.add_argument("--skip-http", action="store_true", help="only the in-process checks")
    parser.add_argument("--skip-in-process", action="store_true", help="only the HTTP checks")
    return parser


# --- In-process: CSRF and headers ---------------------------------------------------------------


def _role_for(entry: Any, method: str, *, public_anonymous: bool = False) -> str | None:
    """A signed-in role the matrix allows (on the own object), else anonymous, else None;
    with ``public_anonymous``, anonymous first when it is allowed (a public page)."""
    allowed = entry.allowed("own", method)
    if public_anonymous and "anonymous" in allowed:
        return "anonymous"
    for role in authz_roles():
        if role in allowed and role != "anonymous" and not role.startswith("api_"):
            return role
    return "anonymous" if "anonymous" in allowed else None


def authz_roles() -> Sequence[str]:
    from tests.proofs.authz_matrix import ROLES  # noqa: PLC0415

    return ROLES


def _row_counts(world: authz.World) -> dict[str, int]:
    with authz.app_session(world.app) as session:
        names = inspect(session.get_bind()).get_table_names()
        return {
            name: int(session.scalar(select(func.count()).select_from(table(name))) or 0)
            for name in names
        }


@dataclass
class CsrfResult:
    routes: int = 0
    requests: int = 0
    accepted: list[str] = field(default_factory=list)
    db_changes: dict[str, tuple[int, int]] = field(default_factory=dict)


def check_csrf(world: authz.World) -> CsrfResult:
    from tests.proofs.authz_matrix import MATRIX  # noqa: PLC0415

    result = CsrfResult()
    for role in authz_roles():
        world.client(role)  # every session made before the count
    before = _row_counts(world)
    for name, rules in sorted(authz.endpoints_of(world.app).items()):
        entry = MATRIX[name]
        if entry.api:
            continue
        for rule in rules:
            for method in authz.methods_of(rule):
                if method == "GET":
                    continue
                chosen = _role_for(entry, method)
                if chosen is None:
                    continue
                role = chosen
                result.routes += 1
                path = rule.build(authz._fill(entry.args, world, "own"), append_unknown=False)[1]
                body = authz._fill(entry.body or {}, world, "own")
                client, _token = world.client(role)
                _other_client, other_token = world.client("anonymous", fresh=True)
                for data in (body, {**body, "csrf_token": other_token}):
                    result.requests += 1
                    response = client.open(path, method=method, data=data)
                    if response.status_code != 400:
                        result.accepted.append(
                            f"{method} {path} as {role}: {response.status_code} "
                            f"{response.headers.get('Location') or ''}"
                        )
                    response.close()
    after = _row_counts(world)
    result.db_changes = {
        name: (before.get(name, 0), count)
        for name, count in after.items()
        if before.get(name, 0) != count
    }
    return result


def header_problems(response: Any, *, signed_in: bool, production: bool = False) -> list[str]:
    """What is missing or wrong in one response's security headers."""
    problems = []
    policy = response.headers.get("Content-Security-Policy", "")
    directives = {
        part.strip().split(" ", 1)[0]: part.strip() for part in policy.split(";") if part.strip()
    }
    scripts = directives.get("script-src", directives.get("default-src", ""))
    if not policy:
        problems.append("no Content-Security-Policy")
    elif not scripts:
        problems.append("CSP restricts no script source")
    if "'unsafe-inline'" in scripts or "'unsafe-eval'" in scripts:
        problems.append(f"CSP scripts: {scripts}")
    if directives.get("frame-ancestors") != "frame-ancestors 'none'":
        problems.append("CSP without frame-ancestors 'none'")
    if response.headers.get("X-Content-Type-Options", "").lower() != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if signed_in and "no-store" not in response.headers.get("Cache-Control", ""):
        problems.append("signed-in page without Cache-Control: no-store")
    if production and "max-age=" not in response.headers.get("Strict-Transport-Security", ""):
        problems.append("no Strict-Transport-Security")
    return problems


@dataclass
class HeaderResult:
    responses: int = 0
    failures: list[str] = field(default_factory=list)


def check_headers(world: authz.World) -> HeaderResult:
    from tests.proofs.authz_matrix import MATRIX  # noqa: PLC0415

    result = HeaderResult()
    requests: list[tuple[str, str, bool]] = []  # (role, path, signed in)
    for name, rules in sorted(authz.endpoints_of(world.app).items()):
        entry = MATRIX[name]
        for rule in rules:
            if "GET" not in authz.methods_of(rule):
                continue
            role = _role_for(entry, "GET", public_anonymous=True)
            if entry.api and role is None:
                role = next(r for r in authz_roles() if r in entry.allowed("own"))
            if role is None:
                continue
            path = rule.build(authz._fill(entry.args, world, "own"), append_unknown=False)[1]
            requests.append((role, path, world.principals[role].kind is not None))
    requests += [
        ("anonymous", "/khong-co-trang-nay", False),
        ("citizen", "/khong-co-trang-nay", False),
        ("anonymous", "/static/softatm.css", False),
        ("anonymous", "/healthz", False),
        ("anonymous", "/metrics", False),
    ]
    for role, path, signed_in in requests:
        client, _token = world.client(role)
        principal = world.principals[role]
        headers = {"Authorization": f"Bearer {principal.bearer}"} if principal.bearer else {}
        response = client.get(path, headers=headers)
        result.responses += 1
        for problem in header_problems(response, signed_in=signed_in):
            result.failures.append(f"GET {path} as {role} ({response.status_code}): {problem}")
        response.close()
    return result


# --- Over HTTP: HSTS, cookies, brute force ------------------------------------------------------


@dataclass
class Target:
    """One secret to guess: `attempt(browser, right)` makes one try and returns the status."""

    name: str
    limit: int
    attempt: Callable[[redeem.Browser, bool], int]
    # Run once per connection before guessing (e.g. the password step before TOTP codes).
    prepare: Callable[[redeem.Browser], None] | None = None


@dataclass
class Guessed:
    name: str
    attempts: int = 0
    checked: int = 0
    locked: int = 0
    other: dict[int, int] = field(default_factory=dict)
    right_after_lock: int = 0

    @property
    def got_through(self) -> int:
        return max(0, self.checked - self.limit_seen) + self.right_after_lock

    limit_seen: int = 0


def _form_post(
    browser: redeem.Browser, page: str, form: dict[str, str], *, token_page: str | None = None
) -> redeem.Reply:
    token = browser.csrf_token(token_page or page)
    return browser.request("POST", page, {**form, "csrf_token": token})


def hammer(port: int, target: Target, connections: int, guesses: int) -> Guessed:
    tally = Guessed(target.name, limit_seen=target.limit)
    lock = threading.Lock()
    remaining = [guesses]

    def worker() -> None:
        try:
            guess()
        except Exception as error:  # reported as an unexpected answer
            log(f"{target.name}: a guessing connection failed: {type(error).__name__}: {error}")
            with lock:
                tally.other[-2] = tally.other.get(-2, 0) + 1

    def guess() -> None:
        browser = redeem.Browser(port)
        try:
            if target.prepare is not None:
                target.prepare(browser)
            while True:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                try:
                    status = target.attempt(browser, False)
                except (OSError, http.client.HTTPException):
                    browser.connection.close()
                    status = -1
                with lock:
                    tally.attempts += 1
                    if status in CHECKED:
                        tally.checked += 1
                    elif status == LOCKED:
                        tally.locked += 1
                    else:
                        tally.other[status] = tally.other.get(status, 0) + 1
        finally:
            browser.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The right secret, on a fresh connection, while the lock lasts.
    browser = redeem.Browser(port)
    try:
        if target.prepare is not None:
            target.prepare(browser)
        status = target.attempt(browser, True)
        tally.attempts += 1
        if status != LOCKED:
            tally.right_after_lock += 1
            log(f"{target.name}: the right secret after the lock answered {status}")
    finally:
        browser.close()
    return tally


@dataclass
class HttpWorld:
    port: int
    citizen_phone: str
    agent_username: str
    agent_totp: str
    agent_totp_username: str
    official_username: str
    api_token: str
    made: dict[str, Any] = field(default_factory=dict)
    data: Any = None
    cookie_problems: list[str] = field(default_factory=list)
    hsts_missing: list[str] = field(default_factory=list)


def _make_people(data: redeem.Data) -> dict[str, Any]:
    """A citizen with a PIN, two agents (password / TOTP targets), an official, an API key."""
    from agent_portal import staff  # noqa: PLC0415
    from agent_portal.models import Role  # noqa: PLC0415
    from kiosk.api import credentials  # noqa: PLC0415
    from kiosk.auth import totp  # noqa: PLC0415
    from kiosk.community.models import OfficialRole  # noqa: PLC0415
    from kiosk.community.staff import create_official  # noqa: PLC0415

    made: dict[str, Any] = {}
    with data.session() as session:
        now = dt.datetime.now(dt.UTC)
        citizen, _fund = authz._citizen(session, authz.World(data.app), "h", authz.COMMUNE)
        made["phone"] = citizen.phone
        office = staff.create_post_office(
            session, code=f"HD{secrets.token_hex(3)}", name="Điểm H", commune_code="00226", now=now
        )
        for key in ("agent_password", "agent_totp"):
            agent = staff.create_agent(
                session,
                post_office=office,
                username=f"hard.{secrets.token_hex(4)}",
                full_name="Nguyễn Thị Lan",
                password=authz.PASSWORD,
                role=Role.AGENT,
                created_by="admin",
                now=now,
            )
            agent.totp_secret_ciphertext = totp.encrypt_secret(authz.TOTP_SECRET)
            agent.totp_enrolled_at = now
            made[key] = agent.username
            if key == "agent_totp":
                _c, token = credentials.create_for_agent(
                    session, agent, name="hard device", created_by="admin", now=now
                )
                made["api_token"] = token
        official = create_official(
            session,
            username=f"hard.{secrets.token_hex(4)}",
            full_name="Nguyễn Thị Hoa",
            password=authz.PASSWORD,
            role=OfficialRole.COMMUNE_OFFICIAL,
            commune_code="00226",
            province_code=None,
            created_by="admin",
        )
        made["official"] = official.username
        from kiosk.citizens.pin_setup import issue_pin_setup_code  # noqa: PLC0415
        from kiosk.payments import codes  # noqa: PLC0415

        newcomer, _fund = authz._citizen(session, authz.World(data.app), "s", authz.COMMUNE)
        newcomer.pin_hash = None
        made["setup_phone"] = newcomer.phone
        made["setup_code"] = issue_pin_setup_code(session, newcomer, now).code
        holder, _fund = authz._citizen(session, authz.World(data.app), "f", authz.COMMUNE)
        made["fallback_phone"] = holder.phone
        made["fallback_code_id"] = str(
            codes.create_withdrawal_code(session, holder, 500_000, now).record.id
        )
    made["fallback_agent"] = data.create_staff(1, 1)[0]
    return made


def _wrong(right: str) -> str:
    """A wrong value of the same shape as ``right``."""
    last = right[-1]
    swap = "0" if last != "0" else "1"
    if not last.isdigit():
        swap = "A" if last != "A" else "B"
    return right[:-1] + swap


def targets(world: HttpWorld, names: Sequence[str]) -> list[Target]:
    from kiosk.api.credentials import API_AUTH_POLICY  # noqa: PLC0415
    from kiosk.auth.staff import PASSWORD_POLICY  # noqa: PLC0415
    from kiosk.auth.throttles import (  # noqa: PLC0415
        FALLBACK_CODE_POLICY,
        PIN_POLICY,
        TOTP_POLICY,
    )
    from kiosk.citizens.pin_setup import PIN_SETUP_POLICY  # noqa: PLC0415

    def pin(browser: redeem.Browser, right: bool) -> int:
        return _form_post(
            browser,
            "/dang-nhap",
            {"phone": world.citizen_phone, "pin": authz.PIN if right else _wrong(authz.PIN)},
        ).status

    def password(page: str, username: str) -> Callable[[redeem.Browser, bool], int]:
        def attempt(browser: redeem.Browser, right: bool) -> int:
            typed = authz.PASSWORD if right else _wrong(authz.PASSWORD)
            return _form_post(browser, page, {"username": username, "password": typed}).status

        return attempt

    def password_step(browser: redeem.Browser) -> None:
        reply = _form_post(
            browser,
            redeem.SIGN_IN_PATH,
            {"username": world.agent_totp_username, "password": authz.PASSWORD},
        )
        if reply.status not in (302, 303):
            raise BenchmarkError(f"the TOTP target's password was refused ({reply.status})")

    def totp_code(browser: redeem.Browser, right: bool) -> int:
        code = pyotp.TOTP(authz.TOTP_SECRET).now()
        typed = code if right else f"{(int(code) + 500_000) % 1_000_000:06d}"
        return _form_post(browser, redeem.TOTP_PATH, {"code": typed}).status

    def api_secret(browser: redeem.Browser, right: bool) -> int:
        token = world.api_token if right else _wrong(world.api_token)
        browser.connection.request(
            "GET", "/api/v1/citizens/1/balance", headers={"Authorization": f"Bearer {token}"}
        )
        response = browser.connection.getresponse()
        response.read()
        # 403: the right secret was accepted (an agent's credential reads no wallets).
        return response.status

    new_pin = "739184"

    def pin_setup(browser: redeem.Browser, right: bool) -> int:
        code = world.made["setup_code"]
        typed = code if right else f"{(int(code) + 1 + secrets.randbelow(10**6)) % 10**8:08d}"
        form = {"phone": world.made["setup_phone"], "code": typed, "pin": new_pin}
        return _form_post(browser, "/dat-ma-pin", {**form, "pin_again": new_pin}).status

    shared: dict[str, Any] = {}
    signing_in = threading.Lock()

    def counter_session(browser: redeem.Browser) -> None:
        """Every connection shares one signed-in agent's session (TOTP codes work once)."""
        with signing_in:
            if "cookies" not in shared:
                shared["cookies"] = _agent_cookies(world.port, world.made["fallback_agent"])
        browser.cookies = dict(shared["cookies"])

    def fallback_code(browser: redeem.Browser, right: bool) -> int:
        from kiosk.payments import codes  # noqa: PLC0415
        from kiosk.payments.models import IssuedCode  # noqa: PLC0415

        with world.data.session() as session:
            record = session.get(IssuedCode, uuid.UUID(world.made["fallback_code_id"]))
            digits = codes.fallback_digits(record, dt.datetime.now(dt.UTC))
        typed = digits if right else f"{(int(digits) + 1 + secrets.randbelow(10**6)) % 10**8:08d}"
        form = {"so_dien_thoai": world.made["fallback_phone"], "ma_so": typed}
        reply = _form_post(browser, "/quay/ma-so", form, token_page=redeem.HOME_PATH)
        if reply.status == 422 and "nhiều lần".encode() in reply.body:
            return LOCKED
        return reply.status

    every = {
        "pin": Target("pin", PIN_POLICY.attempts_max, pin),
        "pin-setup": Target("pin-setup", PIN_SETUP_POLICY.attempts_max, pin_setup),
        "fallback-code": Target(
            "fallback-code", FALLBACK_CODE_POLICY.attempts_max, fallback_code, counter_session
        ),
        "agent-password": Target(
            "agent-password",
            PASSWORD_POLICY.attempts_max,
            password(redeem.SIGN_IN_PATH, world.agent_username),
        ),
        "official-password": Target(
            "official-password",
            PASSWORD_POLICY.attempts_max,
            password("/quan-ly/dang-nhap", world.official_username),
        ),
        "agent-totp": Target("agent-totp", TOTP_POLICY.attempts_max, totp_code, password_step),
        "api-secret": Target("api-secret", API_AUTH_POLICY.attempts_max, api_secret),
    }
    unknown = set(names) - set(every)
    if unknown:
        raise BenchmarkError(f"unknown targets {sorted(unknown)}; known: {sorted(every)}")
    return [every[name] for name in names]


def _agent_cookies(port: int, login: redeem.AgentLogin) -> dict[str, str]:
    """The cookies of an agent signed in through the real pages (password, then TOTP)."""
    signer = redeem.Browser(port)
    try:
        token = signer.csrf_token(redeem.SIGN_IN_PATH)
        form = {"username": login.username, "password": redeem.AGENT_PASSWORD, "csrf_token": token}
        signer.request("POST", redeem.SIGN_IN_PATH, form)
        token = signer.csrf_token(redeem.TOTP_PATH)
        code = pyotp.TOTP(login.totp_secret).now()
        reply = signer.request("POST", redeem.TOTP_PATH, {"code": code, "csrf_token": token})
        if reply.status not in (302, 303):
            raise BenchmarkError(f"the fallback agent's sign-in failed ({reply.status})")
        return dict(signer.cookies)
    finally:
        signer.close()


def check_production_headers(port: int) -> tuple[list[str], list[str]]:
    """(HSTS problems, session cookie problems) of a few production answers."""
    hsts: list[str] = []
    cookies: list[str] = []
    seen_cookie = [False]
    browser = redeem.Browser(port)
    try:
        for path in PRODUCTION_PATHS:
            browser.connection.request("GET", path)
            response = browser.connection.getresponse()
            response.read()
            if "max-age=" not in (response.getheader("Strict-Transport-Security") or ""):
                hsts.append(f"GET {path}: no Strict-Transport-Security")
            for cookie in response.headers.get_all("Set-Cookie") or []:
                attributes = {
                    part.strip().split("=", 1)[0].lower() for part in cookie.split(";")[1:]
                }
                for flag in ("secure", "httponly", "samesite"):
                    if flag not in attributes:
                        cookies.append(f"GET {path}: cookie without {flag}: {cookie[:40]}")
                seen_cookie[0] = True
    finally:
        browser.close()
    if not seen_cookie[0]:
        cookies.append("no page set a session cookie to check")
    return hsts, cookies


def run_http(args: argparse.Namespace) -> tuple[list[Guessed], list[str], list[str]]:
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(common.scratch_database("hardening"))
        keys_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="softatm_proof_")))
        config = redeem.ServerConfig(url, keys_dir / "keys", secrets.token_urlsafe(48))
        from kiosk.database import upgrade  # noqa: PLC0415

        log("migrating the database")
        upgrade(url)
        data = redeem.Data(config, redeem.DEFAULT_AMOUNT_VND)
        stack.callback(data.dispose)
        made = _make_people(data)
        server_args = argparse.Namespace(
            workers=args.workers,
            worker_class="sync",
            threads=None,
            max_requests=0,
            wsgi_app="kiosk.wsgi:app",
        )
        server = redeem.WebServer(server_args, config, keys_dir / "gunicorn.log")
        stack.callback(server.close)
        world = HttpWorld(
            server.port,
            made["phone"],
            made["agent_password"],
            authz.TOTP_SECRET,
            made["agent_totp"],
            made["official"],
            made["api_token"],
            made,
            data,
        )
        hsts, cookies = check_production_headers(server.port)
        results = []
        for target in targets(world, [n for n in args.targets.split(",") if n]):
            log(
                f"guessing {target.name}: {args.guesses} wrong through "
                f"{args.connections} connections"
            )
            guessed = hammer(server.port, target, args.connections, args.guesses)
            log(
                f"{target.name}: {guessed.checked} checked, {guessed.locked} locked, other "
                f"{guessed.other}, right secret after the lock accepted {guessed.right_after_lock}"
            )
            results.append(guessed)
        server.check_alive()
        return results, hsts, cookies


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    ok = True
    if not args.skip_in_process:
        with authz.sqlite_world() as world:
            csrf = check_csrf(world)
            headers = check_headers(world)
        common.emit("hardening_csrf_routes", csrf.routes, "routes", requests=csrf.requests)
        common.emit(
            "hardening_csrf_accepted",
            len(csrf.accepted),
            "requests",
            first=csrf.accepted[:SHOWN_MAX],
        )
        common.emit(
            "hardening_csrf_db_changes",
            len(csrf.db_changes),
            "tables",
            tables={k: list(v) for k, v in csrf.db_changes.items()},
        )
        common.emit("hardening_header_responses", headers.responses, "responses")
        common.emit(
            "hardening_header_failures",
            len(headers.failures),
            "responses",
            first=headers.failures[:SHOWN_MAX],
        )
        ok = ok and not csrf.accepted and not csrf.db_changes and not headers.failures
    if not args.skip_http:
        try:
            results, hsts, cookies = run_http(args)
        except BenchmarkError as error:
            log(f"hardening FAILED: {error}")
            return 1
        common.emit("hardening_hsts_missing", len(hsts), "responses", first=hsts[:SHOWN_MAX])
        common.emit(
            "hardening_cookie_flag_failures", len(cookies), "cookies", first=cookies[:SHOWN_MAX]
        )
        common.emit(
            "hardening_bruteforce_targets",
            len(results),
            "secrets",
            workers=args.workers,
            connections=args.connections,
        )
        common.emit(
            "hardening_bruteforce_attempts",
            sum(r.attempts for r in results),
            "attempts",
            locked=sum(r.locked for r in results),
        )
        got_through = sum(r.got_through for r in results)
        common.emit(
            "hardening_bruteforce_got_through",
            got_through,
            "attempts",
            by_target={r.name: r.got_through for r in results},
        )
        unexpected = {r.name: r.other for r in results if r.other}
        if unexpected:
            log(f"unexpected answers: {unexpected}")
        ok = ok and not hsts and not cookies and got_through == 0 and not unexpected
        ok = ok and all(r.locked > 0 for r in results)
    log(f"hardening: {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1
