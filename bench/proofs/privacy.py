"""Privacy: no citizen ID number, PIN, password, TOTP secret or token is kept in clear, in the
database or in the logs, after a workload through every area.

A scratch PostgreSQL database migrated like production gets the demo data (`kiosk.demo.load`)
and then a workload, mostly over HTTP through gunicorn in production mode with its output (the
app's JSON logs and the access log) captured to a file:

* citizens with PINs; a citizen signs in with a wrong PIN, then the right one;
* an agent signs in (password, TOTP), scans a citizen's withdrawal code (its signed token in the
  form), checks the ID card's last 4 digits and pays it out;
* an official signs in (password, TOTP), registers a household and a member with a citizen ID
  number; a welfare list with ID numbers is uploaded to a pay cycle;
* API calls: an agent's credential verifies a code by its token, cashes in, and makes a
  withdrawal code on a citizen's behalf with their phone and PIN; a system credential reads a
  balance and a statement.

Every secret used is remembered. Afterwards every text, JSON and bytea column of every table
(from information_schema) and every byte of the captured log are searched for each of them in
clear — and for each 12-digit ID number also its hex and base64 spellings.

Figures: `privacy_secrets_used`, `privacy_columns_scanned`, `privacy_values_scanned`,
`privacy_log_bytes_scanned`, `privacy_found_in_clear` (0).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import secrets
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
from sqlalchemy import inspect, text

from bench import common, redeem
from bench.common import BenchmarkError, log
from bench.proofs import authz

CLAIM = (
    "After a workload through every area (registration, sign-ins, codes, a payout, households "
    "with ID numbers, a welfare list, API calls), no citizen ID number, PIN, password, TOTP "
    "secret or token used appears in clear in any database column or in the server's logs."
)

TEXT_TYPES = {"text", "character varying", "character", "json", "jsonb", "bytea"}
SHOWN_MAX = 20
# Shorter secrets would match by chance (amounts, ids); a PIN is 6 digits and is searched as is.
SECRET_LENGTH_MIN_CHARS = 6


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proofs privacy", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default: 2)")
    parser.add_argument("--skip-demo", action="store_true", help="without the demo data")
    parser.add_argument(
        "--keep-log", type=Path, default=None, help="copy the captured server log to this path"
    )
    return parser


def variants(name: str, value: str) -> dict[str, bytes]:
    """The spellings searched: the value; for an ID number also its hex and base64."""
    found = {name: value.encode()}
    if name.startswith("citizen_id"):
        found[f"{name} (hex)"] = value.encode().hex().encode()
        found[f"{name} (base64)"] = base64.b64encode(value.encode()).rstrip(b"=")
    return found


@dataclass
class Scan:
    columns: int = 0
    values: int = 0
    log_bytes: int = 0
    found: list[str] = field(default_factory=list)


def search(blob: bytes, needles: dict[str, bytes], where: str, scan: Scan) -> None:
    for name, needle in needles.items():
        if needle and needle in blob:
            scan.found.append(f"{name} in {where}")


def all_needles(used: dict[str, str]) -> dict[str, bytes]:
    needles: dict[str, bytes] = {}
    for name, value in used.items():
        if len(value) >= SECRET_LENGTH_MIN_CHARS:
            needles.update(variants(name, value))
    return needles


def _text_columns(connection: Any) -> list[tuple[str, str]]:
    """(table, column) of every text, JSON or binary column: from information_schema on
    PostgreSQL, from SQLite's own catalogue (through SQLAlchemy's inspector) otherwise."""
    if connection.dialect.name == "postgresql":
        rows = connection.execute(
            text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
            )
        ).all()
        return [(table, column) for table, column, kind in rows if kind in TEXT_TYPES]
    inspector = inspect(connection)
    found = []
    for table in inspector.get_table_names():
        for column in inspector.get_columns(table):
            kind = str(column["type"]).upper()
            if any(word in kind for word in ("CHAR", "TEXT", "BLOB", "BINARY", "JSON", "CLOB")):
                found.append((table, column["name"]))
    return found


def scan_database(connection: Any, needles: dict[str, bytes], scan: Scan) -> None:
    """Every text/JSON/bytea column of every table."""
    for table_name, column_name in _text_columns(connection):
        scan.columns += 1
        rows = connection.execute(
            text(f'SELECT "{column_name}" FROM "{table_name}" WHERE "{column_name}" IS NOT NULL')
        ).scalars()
        for value in rows:
            scan.values += 1
            if isinstance(value, memoryview | bytes):
                blob = bytes(value)
            elif isinstance(value, dict | list):
                blob = json.dumps(value, ensure_ascii=False).encode()
            else:
                blob = str(value).encode()
            search(blob, needles, f"{table_name}.{column_name}", scan)


def scan_logs(paths: Iterable[Path], needles: dict[str, bytes], scan: Scan) -> None:
    for path in paths:
        data = path.read_bytes()
        scan.log_bytes += len(data)
        for number, line in enumerate(data.splitlines(), 1):
            search(line, needles, f"{path.name}:{number}", scan)


def dedupe(found: list[str]) -> list[str]:
    return sorted(set(found))


# --- The workload -------------------------------------------------------------------------------


def _post(
    browser: redeem.Browser, page: str, form: dict[str, str], *, token_page: str | None = None
) -> redeem.Reply:
    token = browser.csrf_token(token_page or page)
    return browser.request("POST", page, {**form, "csrf_token": token})


def _api(
    browser: redeem.Browser, method: str, path: str, token: str, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = str(uuid.uuid4())
    browser.connection.request(method, path, data, headers)
    response = browser.connection.getresponse()
    raw = response.read()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, None


@dataclass
class Steps:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: object = "") -> None:
        (self.done if ok else self.failed).append(f"{name}{'' if ok else f': {detail}'}")


def _set_up(data: redeem.Data, used: dict[str, str], demo: bool) -> dict[str, Any]:
    """The demo data, citizens with PINs, an official, a village, a welfare cycle, credentials."""
    from kiosk import demo as demo_data  # noqa: PLC0415
    from kiosk.api import credentials  # noqa: PLC0415
    from kiosk.auth.staff import enrol_known_secret  # noqa: PLC0415
    from kiosk.community.models import OfficialRole, Village  # noqa: PLC0415
    from kiosk.community.staff import create_official  # noqa: PLC0415
    from kiosk.welfare import cycles, upload  # noqa: PLC0415

    made: dict[str, Any] = {}
    if demo:
        with data.session() as session:
            demo_data.load(session)
        used["pin:demo"] = demo_data.DEMO_PIN
        used["totp_secret:demo"] = demo_data.DEMO_TOTP_SECRET
        for number, person in enumerate(demo_data.DEMO_CITIZENS):
            used[f"citizen_id:demo{number}"] = person[1]
    with data.session() as session:
        now = dt.datetime.now(dt.UTC)
        world = authz.World(data.app)
        pin = f"{secrets.randbelow(10**6):06d}"
        citizen, _fund = authz._citizen(session, world, "privacy", authz.COMMUNE)
        from kiosk.citizens.credentials import hash_pin  # noqa: PLC0415

        citizen.pin_hash = hash_pin(pin)
        used.update(world.secrets_used)
        used["pin:privacy"] = pin
        made["citizen_phone"] = citizen.phone
        made["citizen_pin"] = pin
        made["citizen_id"] = citizen.id
        official_password = f"mật khẩu {secrets.token_urlsafe(12)}"
        totp_secret = pyotp.random_base32()
        official = create_official(
            session,
            username=f"privacy.{secrets.token_hex(4)}",
            full_name="Nguyễn Thị Hoa",
            password=official_password,
            role=OfficialRole.COMMUNE_OFFICIAL,
            commune_code=authz.COMMUNE,
            province_code=None,
            created_by="admin",
        )
        enrol_known_secret(official, totp_secret, now)
        used["password:official"] = official_password
        used["totp_secret:official"] = totp_secret
        made["official"] = (official.username, official_password, totp_secret)
        village = Village(
            commune_code=authz.COMMUNE, name="Thôn Riêng Tư", created_at=now, created_by="admin"
        )
        session.add(village)
        session.flush()
        made["village_id"] = village.id
        _system, system_token = credentials.create_for_system(
            session,
            "privacy-system",
            scopes=[scope.value for scope in credentials.Scope],
            created_by="admin",
            now=now,
        )
        used["api_token:system"] = system_token
        used["api_secret:system"] = system_token.split(".", 1)[1]
        made["system_token"] = system_token
        programme = cycles.create_programme(
            session, commune_code=authz.COMMUNE, name="Trợ cấp riêng tư", by="official:1", now=now
        )
        cycles.record_funding(
            session,
            programme,
            amount=2_000_000,
            reference="Lệnh chi 9",
            request_id=uuid.uuid4(),
            now=now,
        )
        cycle = cycles.create_cycle(
            session, programme, label="Tháng 9", voucher_validity_days=30, by="official:1", now=now
        )
        welfare_ids = [f"0010500{secrets.randbelow(10**5):05d}" for _ in range(2)]
        for number, welfare_id in enumerate(welfare_ids):
            used[f"citizen_id:welfare{number}"] = welfare_id
        sheet = "Số CCCD,Họ và tên,Số tiền,Số điện thoại\r\n" + "".join(
            f"{welfare_id},Đinh Thị Lan,500000,\r\n" for welfare_id in welfare_ids
        )
        with data.app.test_request_context():
            cycles.upload_list(
                session,
                cycle,
                upload.parse_list("danh-sach.csv", sheet.encode()),
                denomination_vnd=data.app.config["WITHDRAWAL_DENOMINATION_VND"],
                by="official:1",
                now=now,
            )
    return made


def run_workload(
    data: redeem.Data,
    port: int,
    made: dict[str, Any],
    used: dict[str, str],
    steps: Steps,
    *,
    keys_dir: Path,
) -> None:
    from kiosk.api import credentials  # noqa: PLC0415

    # A citizen: a wrong PIN, then the right one.
    browser = redeem.Browser(port)
    wrong = f"{(int(made['citizen_pin']) + 1) % 10**6:06d}"
    used["pin:wrong"] = wrong
    reply = _post(browser, "/dang-nhap", {"phone": made["citizen_phone"], "pin": wrong})
    steps.check("citizen wrong PIN refused", reply.status == 422, reply.status)
    reply = _post(
        browser, "/dang-nhap", {"phone": made["citizen_phone"], "pin": made["citizen_pin"]}
    )
    steps.check("citizen signs in", reply.status in (302, 303), reply.status)
    reply = browser.request("GET", "/vi")
    steps.check("citizen's wallet", reply.status == 200, reply.status)
    browser.close()

    # An agent: sign in, scan a code, check the ID card, pay out (bench.redeem's counter client).
    logins = data.create_staff(1, 1)
    used["password:agent"] = redeem.AGENT_PASSWORD
    used["totp_secret:agent"] = logins[0].totp_secret
    codes = data.create_codes(2)
    used["citizen_id:redeem0"] = redeem.Data._citizen_id(0)
    client = redeem.CounterClient(0, redeem.ClientConfig(port, keys_dir, tuple(logins)))
    client.sign_in()
    token = client.fresh_token(codes[0])
    used["token:scanned"] = token
    original = client.fresh_token
    client.fresh_token = lambda code: token  # type: ignore[method-assign]
    steps.check("agent pays out a scanned code", client.redeem(codes[0]) == 1, client.failures)
    client.fresh_token = original  # type: ignore[method-assign]
    client.close()

    # The agent's API device: verify a code by its token, cash in, a code on a citizen's behalf.
    with data.session() as session:
        from sqlalchemy import select  # noqa: PLC0415

        from agent_portal.models import Agent  # noqa: PLC0415

        agent = session.scalar(select(Agent).where(Agent.username == logins[0].username))
        assert agent is not None
        _credential, agent_token = credentials.create_for_agent(
            session, agent, name="privacy device", created_by="admin", now=dt.datetime.now(dt.UTC)
        )
    used["api_token:agent"] = agent_token
    used["api_secret:agent"] = agent_token.split(".", 1)[1]
    browser = redeem.Browser(port)
    second = client.fresh_token(codes[1])
    used["token:api"] = second
    status, _body = _api(browser, "POST", "/api/v1/codes/verify", agent_token, {"token": second})
    steps.check("API verifies a code", status == 200, status)
    status, _body = _api(
        browser,
        "POST",
        "/api/v1/cash-ins",
        agent_token,
        {"phone": made["citizen_phone"], "amount_vnd": 200_000},
    )
    steps.check("API cash-in", status == 201, status)
    status, body = _api(
        browser,
        "POST",
        "/api/v1/withdrawal-codes",
        made["system_token"],
        {"phone": made["citizen_phone"], "pin": made["citizen_pin"], "amount_vnd": 100_000},
    )
    steps.check("API code on behalf", status == 201, (status, body))
    if isinstance(body, dict) and body.get("token"):
        used["token:api_code"] = str(body["token"])
    if isinstance(body, dict) and body.get("fallback_digits"):
        used["fallback:api_code"] = str(body["fallback_digits"])
    status, _body = _api(
        browser, "GET", f"/api/v1/citizens/{made['citizen_id']}/balance", made["system_token"]
    )
    steps.check("API balance", status == 200, status)
    status, _body = _api(
        browser, "GET", f"/api/v1/citizens/{made['citizen_id']}/statement", made["system_token"]
    )
    steps.check("API statement", status == 200, status)
    browser.close()

    # An official: sign in, a household, a member with an ID number.
    username, password, totp_secret = made["official"]
    browser = redeem.Browser(port)
    reply = _post(browser, "/quan-ly/dang-nhap", {"username": username, "password": password})
    steps.check("official password", reply.status in (302, 303), reply.status)
    reply = _post(browser, "/quan-ly/xac-thuc", {"code": pyotp.TOTP(totp_secret).now()})
    steps.check("official TOTP", reply.status in (302, 303), reply.status)
    household_id = str(uuid.uuid4())
    reply = _post(
        browser,
        "/quan-ly/ho/moi",
        {
            "household_id": household_id,
            "village": str(made["village_id"]),
            "head_name": "Lê Văn Ba",
            "address": "Số 1 ngõ 2",
        },
    )
    steps.check("official registers a household", reply.status in (302, 303), reply.status)
    person_number = f"0010600{secrets.randbelow(10**5):05d}"
    used["citizen_id:household"] = person_number
    page = f"/quan-ly/ho/{household_id}/them-nguoi"
    reply = _post(
        browser,
        page,
        {
            "person_id": str(uuid.uuid4()),
            "full_name": "Lê Văn Ba",
            "birth_day": "1",
            "birth_month": "1",
            "birth_year": "1960",
            "sex": "male",
            "citizen_id": person_number,
            "welfare": "yes",
            "consent": "yes",
        },
    )
    steps.check(
        "official adds a person with an ID number", reply.status in (302, 303), reply.status
    )
    browser.close()


def run(args: argparse.Namespace) -> tuple[int, Scan, Steps]:
    used: dict[str, str] = {}
    steps = Steps()
    scan = Scan()
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(common.scratch_database("privacy"))
        keys_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="softatm_proof_")))
        config = redeem.ServerConfig(url, keys_dir / "keys", secrets.token_urlsafe(48))
        used["secret_key"] = config.secret_key
        from kiosk.database import upgrade  # noqa: PLC0415

        log("migrating the database")
        upgrade(url)
        data = redeem.Data(config, redeem.DEFAULT_AMOUNT_VND)
        stack.callback(data.dispose)
        with authz.cheap_hashing():
            made = _set_up(data, used, not args.skip_demo)
        log_path = keys_dir / "gunicorn.log"
        server_args = argparse.Namespace(
            workers=args.workers,
            worker_class="sync",
            threads=None,
            max_requests=0,
            wsgi_app="kiosk.wsgi:app",
        )
        server = redeem.WebServer(server_args, config, log_path)
        try:
            run_workload(data, server.port, made, used, steps, keys_dir=config.keys_dir)
            server.check_alive()
        finally:
            server.close()
        needles = all_needles(used)
        log(f"searching for {len(used)} secrets ({len(needles)} spellings)")
        with data.app.app_context():
            from kiosk import database  # noqa: PLC0415

            with database.database().engine.connect() as connection:
                scan_database(connection, needles, scan)
        scan_logs([log_path], needles, scan)
        if args.keep_log is not None:
            args.keep_log.write_bytes(log_path.read_bytes())
    return len(used), scan, steps


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        secrets_used, scan, steps = run(args)
    except BenchmarkError as error:
        log(f"privacy FAILED: {error}")
        return 1
    found = dedupe(scan.found)
    common.emit("privacy_secrets_used", secrets_used, "secrets", steps=len(steps.done))
    common.emit("privacy_columns_scanned", scan.columns, "columns")
    common.emit("privacy_values_scanned", scan.values, "values")
    common.emit("privacy_log_bytes_scanned", scan.log_bytes, "bytes")
    common.emit("privacy_found_in_clear", len(found), "places", first=found[:SHOWN_MAX])
    for failure in steps.failed:
        log(f"workload step failed: {failure}")
    for place in found:
        log(f"IN CLEAR: {place}")
    ok = not found and not steps.failed
    log(f"privacy: {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1
