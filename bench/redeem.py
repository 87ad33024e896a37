"""Redeem benchmark: withdrawal codes paid out at the counter over HTTP, through gunicorn.

Figures (stdout, JSON lines), all measured in this run:

* `healthz_http_per_s` — GET /healthz answered per second by the same server and clients, closed
  loop: what the server, the HTTP stack and the clients cost without the app's work;
* `redeem_http_per_s` — redemptions per second at peak, closed loop: each of `--clients` clients
  is a counter, signed in as its own agent, and pays out fresh withdrawal codes back to back —
  POST /quay/quet (scan), POST /quay/ma/<ticket>/doi-chieu (the last 4 digits of the ID card),
  POST /quay/ma/<ticket>/chi-tra (face matched: pay out, 303 to the receipt); `baseline` and
  `ratio` compare it with healthz;
* `redeem_http_p50_ms_at_half_peak`, `redeem_http_p99_ms_at_half_peak` — open loop at half the
  measured peak: every client starts redemptions on a fixed schedule (the clients' schedules
  interleaved), and a redemption's latency runs from its scheduled start to the 303, so time spent
  waiting behind a slow one counts (no coordinated omission).

Set-up, outside every measured window: a scratch PostgreSQL database migrated like production;
a post office per `--agents-per-post-office` agents, each agent enrolled in TOTP, with a drawer
holding plenty of cash and open; verified citizens with money, and withdrawal codes below the
payout-approval threshold, at most `OPEN_CODES_PER_CITIZEN_MAX` open codes per citizen. The first
citizen and code go through the app's own `register_on_behalf` and `create_withdrawal_code`; the
rest are written in bulk the same way (same ledger reservations, same rows), because the app's
path costs 10-20 ms a code and a run needs tens of thousands. A client re-signs each code's token
(as the citizen's phone does every 30 s) just before scanning it, so no token is ever stale.

The server is gunicorn with `deploy/gunicorn.conf.py`, in production mode, bound to a free port
on 127.0.0.1; `--workers`, `--worker-class` and `--threads` override the file (see
`DEFAULT_WORKERS` for what was measured), and `--max-requests` (default 0) turns off its worker
recycling, which at healthz rates would restart every worker every few seconds. Clients sign in
through the real pages (password, then TOTP) and keep one keep-alive connection each
(http.client), spread over `common.ClientPool` processes like the ledger benchmark's.

Each window reports where the CPU went: the web server's processes, PostgreSQL, the clients, and
the rest. At the end every redemption must have had its 303 to a receipt, the payouts in
`counter_operations` and the redeemed codes must equal the redemptions the clients saw, and
`ledger.verify_ledger` must be clean; otherwise the benchmark fails instead of printing figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import importlib.util
import math
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import ledger
from bench import common
from bench.common import BenchmarkError, ClientPool, ClientResult, Window, log
from ledger import AccountKind, Post, Reserve

PROJECT_ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONFIG = PROJECT_ROOT / "deploy" / "gunicorn.conf.py"
HOST = "127.0.0.1"

# Peak redemptions/s measured on the 2-CPU development machine with 16 clients (a shared machine:
# ranges over windows): 4 sync workers 45-62, 6 sync 46-51, 3 sync 28-38; gthread 3 x 4 threads
# 26-48, 4 x 2 26-35, 2 x 4 29-34, and the config file's 5 x 4 13 (a noisy window). The work is
# CPU-bound Python that waits on PostgreSQL about a quarter of the time, so four processes keep
# both CPUs busy (0-1 % idle). A gthread worker keeps each client's keep-alive connection, so 16
# connections spread unevenly and one worker saturates while another idles; a sync worker takes
# every request from the shared accept queue (and closes the connection after it).
DEFAULT_WORKERS = 4
DEFAULT_WORKER_CLASS = "sync"
# Below SOFTATM_PAYOUT_APPROVAL_ABOVE_VND (no supervisor approval, no step-up) and at the default
# fee schedule's 2 000 000 step, so a payout posts all four transfers: the reservation, the cash,
# the fee and the commission.
DEFAULT_AMOUNT_VND = 2_000_000
# Each drawer holds enough for any run: 10 000 payouts of the default amount.
DRAWER_FLOAT_VND = 20_000_000_000
AGENT_PASSWORD = "quầy-bench-2026"  # noqa: S105 - a scratch database's throwaway agents
COMMUNE_CODE = "00226"
PROVINCE_CODE = "01"
# Citizen IDs: province of birth 001, century/sex digit 0 (a man born in the 1900s), year 80.
CITIZEN_ID_PREFIX = "001080"
BIRTH_DATE = dt.date(1980, 1, 1)
CITIZEN_NAME = "Nguyễn Văn An"

CREATE_BATCH = 1_000
# Codes handed to clients beyond the expected need, and the expected rate's safety factor.
CODES_SLACK_PER_CLIENT = 4
CODES_SAFETY_FACTOR = 1.3
# A code still has to be valid this long after its window ends to be handed out again.
CODE_VALIDITY_MARGIN_S = 60
TRIAL_CODES_PER_CLIENT = 40
TRIAL_WARMUP_S = 1.0
TRIAL_DURATION_S = 2.0
WINDOW_RETRIES_MAX = 2
SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 35.0
HTTP_TIMEOUT_S = 30.0
FAILURES_MAX = 50
FAILURES_SHOWN = 5

_CSRF = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')
_TICKET = re.compile(rb"/quay/ma/([A-Za-z0-9_.\-]+)/doi-chieu")
_RECEIPT = re.compile(r"/quay/bien-nhan/[0-9a-f-]{36}$")

SCAN_PATH = "/quay/quet"
SIGN_IN_PATH = "/quay/dang-nhap"
TOTP_PATH = "/quay/xac-thuc"
HOME_PATH = "/quay/"
HEALTHZ_PATH = "/healthz"


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"gunicorn worker processes (default: {DEFAULT_WORKERS})",
    )
    group.add_argument(
        "--worker-class",
        choices=("sync", "gthread"),
        default=DEFAULT_WORKER_CLASS,
        help=f"gunicorn worker class (default: {DEFAULT_WORKER_CLASS})",
    )
    group.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per gthread worker (default: 1 for sync, the config file's for gthread)",
    )
    group.add_argument(
        "--max-requests",
        type=int,
        default=0,
        help="gunicorn max_requests: recycle a worker after this many requests (default: 0, "
        "never; the config file's 2000 would restart every worker every few seconds at healthz "
        "rates, measuring Python start-up and losing the exited workers' CPU from the figures)",
    )
    group.add_argument(
        "--agents-per-post-office",
        type=int,
        default=1,
        help="counters (agents) per post office; they share its commission account "
        "(default: 1, every client a commune post office of its own)",
    )
    group.add_argument(
        "--amount-vnd",
        type=int,
        default=DEFAULT_AMOUNT_VND,
        help=f"amount of each withdrawal code (default: {DEFAULT_AMOUNT_VND})",
    )
    group.add_argument(
        "--wsgi-app",
        default="kiosk.wsgi:app",
        help="the WSGI app gunicorn serves (default: kiosk.wsgi:app; a wrapper module on "
        "PYTHONPATH can profile it)",
    )
    group.add_argument(
        "--server-log",
        type=Path,
        default=None,
        help="keep gunicorn's access and error log at this path (default: a temporary file)",
    )


# --- The data: agents, citizens, codes -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentLogin:
    username: str
    totp_secret: str


@dataclass(frozen=True, slots=True)
class Code:
    """What a client needs to show and check a code: its claims and the ID card's last 4."""

    code_id: uuid.UUID
    account_id: int
    amount: int
    created_at: dt.datetime
    expires_at: dt.datetime
    last4: str
    citizen_id: int


@dataclass(frozen=True, slots=True)
class ServerConfig:
    database_url: str
    keys_dir: Path
    secret_key: str

    def overrides(self) -> dict[str, object]:
        return {
            "DATABASE_URL": self.database_url,
            "KEYS_DIR": str(self.keys_dir),
            "SECRET_KEY": self.secret_key,
            "SOFTATM_ENV": "production",
        }

    def environ(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "SOFTATM_KEYS_DIR": str(self.keys_dir),
            "SECRET_KEY": self.secret_key,
            "SOFTATM_ENV": "production",
        }


class Data:
    """The app in-process on the benchmark's database: creates agents, citizens and codes."""

    def __init__(self, config: ServerConfig, amount: int) -> None:
        # Imported here: the app is only needed by the parent, and only for this benchmark.
        from kiosk import create_app  # noqa: PLC0415
        from kiosk.keys import init_data_keys, signing_keys_dir  # noqa: PLC0415

        init_data_keys(config.keys_dir)
        from kiosk.codes import generate_key  # noqa: PLC0415

        generate_key(signing_keys_dir(config.keys_dir))
        self.app = create_app(config.overrides())
        self.amount = amount
        self.ttl_s = int(self.app.config["WITHDRAWAL_CODE_TTL_S"])
        self._check_amount()
        self.citizens = 0
        # (citizen id, wallet account id, last 4) -> codes made, for citizens who may get more. A
        # citizen gets at most OPEN_CODES_PER_CITIZEN_MAX codes in all, and money for just those.
        self._slots: dict[tuple[int, int, str], int] = {}
        self.treasury = 0
        self.clearing = 0

    def _check_amount(self) -> None:
        config = self.app.config
        if self.amount > config["PAYOUT_APPROVAL_ABOVE_VND"]:
            raise BenchmarkError(
                f"--amount-vnd {self.amount} is above PAYOUT_APPROVAL_ABOVE_VND "
                f"({config['PAYOUT_APPROVAL_ABOVE_VND']}): every payout would need an approval"
            )
        denomination = config["WITHDRAWAL_DENOMINATION_VND"]
        if self.amount % denomination or self.amount <= 0:
            raise BenchmarkError(f"--amount-vnd must be a positive multiple of {denomination}")
        codes_max = self._codes_per_citizen()
        if self.amount * codes_max > min(
            config["DAILY_OUTGOING_MAX_VND"], config["MONTHLY_OUTGOING_MAX_VND"]
        ) or self.amount > min(config["TRANSACTION_MAX_VND"], config["STEP_UP_ABOVE_VND"]):
            raise BenchmarkError(f"--amount-vnd {self.amount} is above a citizen's limits")

    @staticmethod
    def _codes_per_citizen() -> int:
        from kiosk.payments.codes import OPEN_CODES_PER_CITIZEN_MAX  # noqa: PLC0415

        return OPEN_CODES_PER_CITIZEN_MAX

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        from kiosk.database import get_session  # noqa: PLC0415

        with self.app.test_request_context():
            session = get_session()
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def _fee(self) -> int:
        from agent_portal.fees import FeeOperation  # noqa: PLC0415

        return int(self.app.config["FEE_SCHEDULE"].charge(FeeOperation.WITHDRAWAL, self.amount).fee)

    def create_staff(self, agents: int, per_post_office: int) -> list[AgentLogin]:
        """Post offices and agents (TOTP enrolled), each agent's drawer funded and open."""
        from agent_portal import counter, staff  # noqa: PLC0415
        from agent_portal.drawer import Count, start_drawer  # noqa: PLC0415
        from kiosk.auth import totp  # noqa: PLC0415
        from kiosk.payments.codes import withdrawal_clearing_account  # noqa: PLC0415

        logins = []
        with self.session() as session:
            now = dt.datetime.now(dt.UTC)
            self.treasury = ledger.open_account(
                session, kind=AccountKind.SETTLEMENT, name="Kho bạc (bench)", owner_ref="bench"
            ).id
            # Opened on first use by the app; opened here so that the first payouts, racing in
            # several workers, do not measure (or trip over) the opening.
            self.clearing = withdrawal_clearing_account(session)
            counter.fee_revenue_account(session)
            post_office = None
            for number in range(agents):
                if number % per_post_office == 0:
                    post_office = staff.create_post_office(
                        session,
                        code=f"BENCH{number // per_post_office:03d}",
                        name=f"Bưu điện văn hoá xã (bench {number // per_post_office})",
                        commune_code=COMMUNE_CODE,
                        now=now,
                    )
                assert post_office is not None
                agent = staff.create_agent(
                    session,
                    post_office=post_office,
                    username=f"bench.agent{number:03d}",
                    full_name=f"Nhân viên quầy {'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[number % 26]}",
                    password=AGENT_PASSWORD,
                    created_by="admin",
                    now=now,
                )
                secret = totp.new_secret()
                agent.totp_secret_ciphertext = totp.encrypt_secret(secret)
                agent.totp_enrolled_at = now
                ledger.post_transfer(
                    session,
                    Post(
                        f"bench:float:{agent.id}",
                        agent.drawer_account_id,
                        self.treasury,
                        DRAWER_FLOAT_VND,
                        "opening_float",
                    ),
                    now=now,
                )
                start_drawer(session, agent, Count(DRAWER_FLOAT_VND, None), now)
                logins.append(AgentLogin(agent.username, secret))
        return logins

    def _first_citizen_and_code(self) -> Code:
        """The first citizen and code through the app's own functions, as the templates of the
        bulk ones (and a check that the app's path still takes what the bulk path writes)."""
        from kiosk.citizens.limits import verify_in_person  # noqa: PLC0415
        from kiosk.citizens.registration import (  # noqa: PLC0415
            CONSENT_GIVEN,
            Field,
            register_on_behalf,
        )
        from kiosk.payments.codes import create_withdrawal_code  # noqa: PLC0415

        with self.session() as session:
            now = dt.datetime.now(dt.UTC)
            number = self.citizens
            citizen = register_on_behalf(
                session,
                {
                    Field.PHONE: self._phone(number),
                    Field.CITIZEN_ID: self._citizen_id(number),
                    Field.FULL_NAME: CITIZEN_NAME,
                    Field.BIRTH_DAY: str(BIRTH_DATE.day),
                    Field.BIRTH_MONTH: str(BIRTH_DATE.month),
                    Field.BIRTH_YEAR: str(BIRTH_DATE.year),
                    Field.SEX: "male",
                    Field.PROVINCE: PROVINCE_CODE,
                    Field.COMMUNE: COMMUNE_CODE,
                    Field.CONSENT: CONSENT_GIVEN,
                },
                "agent:1",
                now,
            )
            verify_in_person(session, citizen, "agent:1", now)
            self._fund(session, [citizen.wallet_account_id], now)
            shown = create_withdrawal_code(session, citizen, self.amount, now)
            record = shown.record
            self.citizens += 1
            key = (citizen.id, citizen.wallet_account_id, citizen.citizen_id_last4)
            self._slots[key] = 1
            return Code(
                record.id,
                record.wallet_account_id,
                record.amount,
                record.created_at,
                record.expires_at,
                citizen.citizen_id_last4,
                citizen.id,
            )

    @staticmethod
    def _phone(number: int) -> str:
        return f"09{number:08d}"

    @staticmethod
    def _citizen_id(number: int) -> str:
        return f"{CITIZEN_ID_PREFIX}{number:06d}"

    def _fund(self, session: Session, wallets: Sequence[int], now: dt.datetime) -> None:
        """Money for every code a citizen may hold at once, and its fee: a cash-in."""
        per_wallet = (self.amount + self._fee()) * self._codes_per_citizen()
        ledger.post_transfers(
            session,
            [
                Post(f"bench:fund:{wallet}", self.treasury, wallet, per_wallet, "cash_in")
                for wallet in wallets
            ],
            now=now,
        )

    def _create_citizens(self, count: int) -> None:
        """`count` verified citizens with money, written like `register_on_behalf` does."""
        from kiosk.citizen_id import citizen_id_last4  # noqa: PLC0415
        from kiosk.citizens.models import Citizen, KycTier  # noqa: PLC0415
        from kiosk.citizens.registration import (  # noqa: PLC0415
            CITIZEN_ID_PURPOSE,
            CONSENT_VERSION,
        )
        from kiosk.pii import vault  # noqa: PLC0415

        with self.session() as session:
            now = dt.datetime.now(dt.UTC)
            pii = vault()
            citizens = []
            for _ in range(count):
                number = self.citizens
                self.citizens += 1
                citizen_id = self._citizen_id(number)
                wallet = ledger.open_account(
                    session, kind=AccountKind.CITIZEN_WALLET, name=f"Ví — {CITIZEN_NAME}", now=now
                )
                citizens.append(
                    (
                        wallet,
                        Citizen(
                            phone=self._phone(number),
                            full_name=CITIZEN_NAME,
                            date_of_birth=BIRTH_DATE,
                            sex="male",
                            commune_code=COMMUNE_CODE,
                            citizen_id_ciphertext=pii.encrypt(
                                citizen_id, purpose=CITIZEN_ID_PURPOSE
                            ),
                            citizen_id_lookup=pii.lookup_hash(
                                citizen_id, purpose=CITIZEN_ID_PURPOSE
                            ),
                            citizen_id_last4=citizen_id_last4(citizen_id),
                            kyc_tier=KycTier.VERIFIED,
                            verified_at=now,
                            verified_by="agent:1",
                            pin_hash=None,
                            pin_changed_at=None,
                            consent_version=CONSENT_VERSION,
                            consent_at=now,
                            registered_by="agent:1",
                            wallet_account_id=wallet.id,
                            session_epoch=0,
                            created_at=now,
                        ),
                    )
                )
            session.add_all(citizen for _wallet, citizen in citizens)
            session.flush()
            for wallet, citizen in citizens:
                wallet.owner_ref = f"citizen:{citizen.id}"
                self._slots[(citizen.id, wallet.id, citizen.citizen_id_last4)] = 0
            session.flush()
            self._fund(session, [wallet.id for wallet, _citizen in citizens], now)

    def create_codes(self, count: int) -> list[Code]:
        """`count` new open withdrawal codes, each reserving its money like
        `create_withdrawal_code` does, spread over citizens with a free slot."""
        from kiosk.payments.models import CodeKind, CodeStatus, IssuedCode  # noqa: PLC0415

        made: list[Code] = []
        if self.citizens == 0 and count > 0:
            made.append(self._first_citizen_and_code())
        per_citizen = self._codes_per_citizen()
        while len(made) < count:
            wanted = min(CREATE_BATCH, count - len(made))
            slots = sum(per_citizen - used for used in self._slots.values())
            if slots < wanted:
                self._create_citizens(math.ceil((wanted - slots) / per_citizen))
                continue
            # Round-robin over the citizens, so that a client's consecutive codes (and
            # concurrent clients' codes) belong to different wallets.
            chosen: list[tuple[int, int, str]] = []
            while len(chosen) < wanted:
                for key in list(self._slots):
                    if len(chosen) == wanted:
                        break
                    self._slots[key] += 1
                    chosen.append(key)
                    if self._slots[key] == per_citizen:
                        del self._slots[key]
            with self.session() as session:
                now = dt.datetime.now(dt.UTC)
                ids = [uuid.uuid4() for _ in chosen]
                pending = ledger.post_transfers(
                    session,
                    [
                        Reserve(
                            key=f"code:{code_id}",
                            debit_account_id=wallet,
                            credit_account_id=self.clearing,
                            amount=self.amount,
                            code=CodeKind.WITHDRAWAL.value,
                            timeout_s=self.ttl_s,
                            memo=str(code_id),
                        )
                        for code_id, (_citizen, wallet, _last4) in zip(ids, chosen, strict=True)
                    ],
                    now=now,
                )
                for code_id, (citizen, wallet, last4), reserved in zip(
                    ids, chosen, pending, strict=True
                ):
                    assert reserved.expires_at is not None
                    session.add(
                        IssuedCode(
                            id=code_id,
                            kind=CodeKind.WITHDRAWAL.value,
                            status=CodeStatus.OPEN.value,
                            citizen_id=citizen,
                            wallet_account_id=wallet,
                            amount=self.amount,
                            pending_transfer_id=reserved.id,
                            biller_id=None,
                            bill_reference=None,
                            created_at=now,
                            expires_at=reserved.expires_at,
                        )
                    )
                    made.append(
                        Code(code_id, wallet, self.amount, now, reserved.expires_at, last4, citizen)
                    )
        return made

    def dispose(self) -> None:
        from kiosk import database  # noqa: PLC0415

        database.dispose(self.app)


# --- The server ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class WebServer:
    """gunicorn with the deploy configuration, on a free port; stopped (by its pid) on close."""

    def __init__(self, args: argparse.Namespace, config: ServerConfig, log_path: Path) -> None:
        self.port = _free_port()
        self.workers = int(args.workers)
        self.worker_class = str(args.worker_class)
        self.threads = int(args.threads or (1 if self.worker_class == "sync" else 0))
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(GUNICORN_CONFIG),
            "--worker-class",
            self.worker_class,
        ]
        if self.threads:
            # With threads above 1, gunicorn runs gthread whatever the class says.
            command += ["--threads", str(self.threads)]
        command += ["--max-requests", str(args.max_requests)]
        command.append(args.wsgi_app)
        environ = {
            **os.environ,
            **config.environ(),
            "BIND": f"{HOST}:{self.port}",
            "WEB_CONCURRENCY": str(self.workers),
        }
        environ.pop("PORT", None)
        self.log_path = log_path
        self._log = log_path.open("ab")
        log(
            f"starting gunicorn on {HOST}:{self.port}: {self.workers} {self.worker_class} "
            f"workers{f' x {self.threads} threads' if self.threads > 1 else ''} "
            f"(log: {log_path})"
        )
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_until_serving()
        except BaseException:
            self.close()
            raise

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchmarkError(
                    f"gunicorn exited with {self.process.returncode}; see {self.log_path}:\n"
                    + self.log_tail()
                )
            try:
                connection = http.client.HTTPConnection(HOST, self.port, timeout=2)
                connection.request("GET", HEALTHZ_PATH)
                if connection.getresponse().status == 200:
                    connection.close()
                    if len(self.pids()) > self.workers:
                        return
                connection.close()
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchmarkError(f"gunicorn did not serve within {SERVER_START_TIMEOUT_S:g} s")

    def log_tail(self, lines: int = 30) -> str:
        try:
            content = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(content[-lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchmarkError(
                f"gunicorn died ({self.process.returncode}); see {self.log_path}:\n"
                + self.log_tail()
            )

    def pids(self) -> list[int]:
        """The master and its workers (workers recycled by max_requests get new pids)."""
        master = self.process.pid
        found = [master]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                content = stat.read_text()
            except OSError:
                continue
            fields = content[content.rfind(")") + 2 :].split()
            if int(fields[1]) == master:
                found.append(int(stat.parent.name))
        return found

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: the workers finish and exit
            try:
                self.process.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log("gunicorn did not stop in time: killing its process group")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        log("gunicorn stopped")


def _cpu_of(pids: Sequence[int]) -> dict[int, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = {}
    for pid in pids:
        try:
            content = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = content[content.rfind(")") + 2 :].split()
        cpu[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return cpu


# --- Clients -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    location: str | None
    body: bytes


class Browser:
    """One keep-alive HTTP connection with a cookie jar: an agent's browser at the counter."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=HTTP_TIMEOUT_S)
        self.cookies: dict[str, str] = {}
        self.reconnects = 0

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Reply:
        headers = {}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body, headers)
                response = self.connection.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection as the request went out: it was
                # not served, so it is sent again on a new connection.
                self.connection.close()
                if attempt == 2:
                    raise
                self.reconnects += 1
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, value = cookie.split(";", 1)[0].partition("=")
            lowered = cookie.lower()
            if not value or "max-age=0" in lowered or "expires=thu, 01 jan 1970" in lowered:
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value.strip()
        return Reply(response.status, response.getheader("Location"), data)

    def csrf_token(self, path: str) -> str:
        reply = self.request("GET", path)
        found = _CSRF.search(reply.body)
        if reply.status != 200 or found is None:
            raise BenchmarkError(f"no CSRF token on GET {path} ({reply.status})")
        return found.group(1).decode()

    def close(self) -> None:
        self.connection.close()


@dataclass(frozen=True, slots=True)
class ClientConfig:
    port: int
    keys_dir: Path
    logins: tuple[AgentLogin, ...]


@dataclass(slots=True)
class Steps:
    """Seconds per step of each redemption in a window (scan, identity check, payout)."""

    scan: list[float] = field(default_factory=list)
    check: list[float] = field(default_factory=list)
    pay: list[float] = field(default_factory=list)


@dataclass(slots=True)
class ClientReport:
    """What a client tells the parent after a window."""

    unused: list[Code]
    used: list[Code]
    exhausted_at: float | None
    steps: Steps
    scheduled: list[tuple[float, float]]
    failures: list[str]
    # Since the last report.
    failures_total: int
    redeemed_total: int
    reconnects: int


class CounterClient:
    """An agent signed in at a counter, paying out the codes it is handed."""

    def __init__(self, index: int, config: ClientConfig) -> None:
        from kiosk.codes import load_key_ring  # noqa: PLC0415
        from kiosk.keys import signing_keys_dir  # noqa: PLC0415

        self.index = index
        self.login = config.logins[index]
        self.browser = Browser(config.port)
        self.key_ring = load_key_ring(signing_keys_dir(config.keys_dir))
        self.csrf = ""
        self.codes: list[Code] = []
        self.used: list[Code] = []
        self.exhausted_at: float | None = None
        self.steps = Steps()
        self.scheduled: list[tuple[float, float]] = []
        self.failures: list[str] = []
        self.failures_total = 0
        self.redeemed_total = 0

    def sign_in(self) -> None:
        browser = self.browser
        token = browser.csrf_token(SIGN_IN_PATH)
        reply = browser.request(
            "POST",
            SIGN_IN_PATH,
            {"username": self.login.username, "password": AGENT_PASSWORD, "csrf_token": token},
        )
        if reply.status not in (302, 303) or not (reply.location or "").endswith(TOTP_PATH):
            raise BenchmarkError(f"{self.login.username}: password refused ({reply.status})")
        # Signing in with the password starts a new cookie, so the form has a new CSRF token.
        token = browser.csrf_token(TOTP_PATH)
        code = pyotp.TOTP(self.login.totp_secret).now()
        reply = browser.request("POST", TOTP_PATH, {"code": code, "csrf_token": token})
        if reply.status not in (302, 303):
            raise BenchmarkError(f"{self.login.username}: TOTP code refused ({reply.status})")
        # And the session after the code has yet another one, for every form of the counter.
        self.csrf = browser.csrf_token(HOME_PATH)

    def _fail(self, what: str) -> int:
        self.failures_total += 1
        if len(self.failures) < FAILURES_SHOWN:
            self.failures.append(f"{self.login.username}: {what}")
        if self.failures_total > FAILURES_MAX:  # since the last report: the server is broken
            raise BenchmarkError(f"more than {FAILURES_MAX} failed redemptions: {self.failures}")
        return 0

    def fresh_token(self, code: Code) -> str:
        """The code signed again now, as the citizen's phone shows it (it does every 30 s)."""
        from kiosk.codes import CodeClaims, CodeKind, reissue  # noqa: PLC0415

        claims = CodeClaims(
            kind=CodeKind.WITHDRAWAL,
            code_id=code.code_id,
            account_id=code.account_id,
            amount_vnd=code.amount,
            issued_at=code.created_at.replace(microsecond=0),
            expires_at=code.expires_at.replace(microsecond=0),
            key_id=0,
        )
        return reissue(claims, self.key_ring, dt.datetime.now(dt.UTC)).token

    def redeem(self, code: Code) -> int:
        """Scan, check the ID card's last 4 digits, pay out: 1 when paid, 0 (noted) otherwise."""
        token = self.fresh_token(code)
        browser = self.browser
        self.used.append(code)
        try:
            began = time.monotonic()
            reply = browser.request("POST", SCAN_PATH, {"ma": token, "csrf_token": self.csrf})
            scanned = time.monotonic()
            found = _TICKET.search(reply.body)
            if reply.status != 200 or found is None:
                return self._fail(f"scan answered {reply.status}: {_excerpt(reply.body)}")
            ticket = found.group(1).decode()
            form = {"bon_so_cuoi": code.last4, "csrf_token": self.csrf}
            reply = browser.request("POST", f"/quay/ma/{ticket}/doi-chieu", form)
            checked = time.monotonic()
            if reply.status != 200 or b"/chi-tra" not in reply.body:
                return self._fail(f"identity check answered {reply.status}: {_excerpt(reply.body)}")
            form["khop_khuon_mat"] = "co"
            reply = browser.request("POST", f"/quay/ma/{ticket}/chi-tra", form)
            paid = time.monotonic()
        except (OSError, http.client.HTTPException) as error:
            self.browser.connection.close()
            return self._fail(f"{type(error).__name__}: {error}")
        if reply.status != 303 or not _RECEIPT.search(reply.location or ""):
            return self._fail(f"payout answered {reply.status}: {_excerpt(reply.body)}")
        self.redeemed_total += 1
        self.steps.scan.append(scanned - began)
        self.steps.check.append(checked - scanned)
        self.steps.pay.append(paid - checked)
        return 1

    def next_code(self) -> Code | None:
        if not self.codes:
            if self.exhausted_at is None:
                self.exhausted_at = time.monotonic()
            return None
        return self.codes.pop()

    def report(self) -> ClientReport:
        report = ClientReport(
            unused=self.codes,
            used=self.used,
            exhausted_at=self.exhausted_at,
            steps=self.steps,
            scheduled=self.scheduled,
            failures=self.failures,
            failures_total=self.failures_total,
            redeemed_total=self.redeemed_total,
            reconnects=self.browser.reconnects,
        )
        self.codes, self.used, self.steps, self.scheduled, self.failures = [], [], Steps(), [], []
        self.exhausted_at = None
        self.redeemed_total = 0
        self.failures_total = 0
        self.browser.reconnects = 0
        return report

    def close(self) -> None:
        self.browser.close()


def _excerpt(body: bytes) -> str:
    """A failed page's error message, or its start."""
    text = body.decode(errors="replace")
    found = re.search(r'role="alert">\s*<p>([^<]+)', text)
    return (found.group(1) if found else text[:200]).strip()


def _client_setup(index: int, config: ClientConfig) -> CounterClient:
    client = CounterClient(index, config)
    client.sign_in()
    return client


# Functions sent to the client processes (by name, so module-level).


def hand_codes(client: CounterClient, codes: dict[int, list[Code]]) -> None:
    client.codes = list(reversed(codes.get(client.index, [])))


def take_report(client: CounterClient, _params: object) -> ClientReport:
    return client.report()


def healthz(client: CounterClient, _params: object) -> common.Operation:
    browser = client.browser

    def operation() -> int:
        reply = browser.request("GET", HEALTHZ_PATH)
        if reply.status != 200:
            return client._fail(f"healthz answered {reply.status}")
        return 1

    return operation


@dataclass(frozen=True, slots=True)
class ClosedLoop:
    stop: float


def redeem_closed(client: CounterClient, params: ClosedLoop) -> common.Operation:
    def operation() -> int:
        code = client.next_code()
        if code is None:  # out of codes: sit out the rest of the window (the parent notices)
            time.sleep(max(0.0, params.stop - time.monotonic()) + 0.01)
            return 0
        return client.redeem(code)

    return operation


@dataclass(frozen=True, slots=True)
class OpenLoop:
    rate: float
    clients: int
    start: float
    stop: float


def redeem_open(client: CounterClient, params: OpenLoop) -> common.Operation:
    """Redemptions on a fixed schedule: client i starts one every clients/rate seconds, offset by
    i/rate, so that together the clients start `rate` a second, evenly spread."""
    interval = params.clients / params.rate
    schedule = iter(
        params.start + (client.index / params.clients + k) * interval for k in range(10**9)
    )

    def operation() -> int:
        due = next(schedule)
        if due >= params.stop:
            time.sleep(max(0.0, params.stop - time.monotonic()) + 0.01)
            return 0
        time.sleep(max(0.0, due - time.monotonic()))
        code = client.next_code()
        if code is None:
            time.sleep(max(0.0, params.stop - time.monotonic()) + 0.01)
            return 0
        done = client.redeem(code)
        if done:
            client.scheduled.append((due, time.monotonic()))
        return done

    return operation


# --- Windows -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cpu:
    """CPU seconds in a window: web server, PostgreSQL, clients, the rest of the machine."""

    wall_s: float
    web_s: float
    database_s: float
    client_s: float
    other_s: float
    idle_s: float

    def describe(self, ops: int, unit: str) -> str:
        ops = max(ops, 1)
        ncpu = os.cpu_count() or 1
        per = [
            ("web", self.web_s),
            ("postgres", self.database_s),
            ("clients", self.client_s),
            ("other", self.other_s),
        ]
        spent = ", ".join(f"{name} {cpu / ops * 1e3:.2f} ms" for name, cpu in per)
        described = (
            f"CPU per {unit}: {spent}; idle {self.idle_s / (self.wall_s * ncpu):.0%} of {ncpu} CPUs"
        )
        if self.other_s / self.wall_s > common.OTHER_LOAD_WARNING_CPUS:
            described += (
                f"; WARNING: {self.other_s / self.wall_s:.2f} CPUs went to other work, "
                "this window is noisy"
            )
        return described


@dataclass(frozen=True, slots=True)
class Outcome:
    measured: common.Measured
    cpu: Cpu
    reports: list[ClientReport]

    @property
    def rate(self) -> float:
        return self.measured.rate


class RedeemBenchmark:
    def __init__(self, args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
        self.args = args
        self.url = stack.enter_context(common.scratch_database("redeem"))
        keys_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="softatm_bench_")))
        self.config = ServerConfig(self.url, keys_dir / "keys", secrets.token_urlsafe(48))
        log("migrating the database")
        from kiosk.database import upgrade  # noqa: PLC0415

        upgrade(self.url)
        self.data = Data(self.config, args.amount_vnd)
        stack.callback(self.data.dispose)
        log(f"creating {args.clients} agents, {args.agents_per_post_office} per post office")
        logins = self.data.create_staff(args.clients, args.agents_per_post_office)
        log_path = args.server_log or keys_dir / "gunicorn.log"
        self.server = WebServer(args, self.config, log_path)
        stack.callback(self.server.close)
        processes = common.client_processes(args)
        log(f"starting {args.clients} clients in {processes} processes; each signs in")
        self.pool = stack.enter_context(
            ClientPool(
                args.clients,
                _client_setup,
                ClientConfig(self.server.port, self.config.keys_dir, tuple(logins)),
                processes=processes,
            )
        )
        # Codes made but not paid out yet: handed out again while they stay valid.
        self.spare: list[Code] = []
        self.redeemed = 0
        self.failures: list[str] = []
        self.failures_total = 0
        self.expected_rate = 0.0
        self.healthz_rates: list[float] = []
        self.redeem_rates: list[float] = []
        self.peak_latency: list[tuple[float, float]] = []
        self.half: Outcome | None = None
        self.half_latency: tuple[float, float] = (math.nan, math.nan)

    # Codes in and out of the clients.

    def hand_out(self, per_client: int, window_s: float) -> None:
        clients = self.args.clients
        needed = per_client * clients
        valid_until = dt.datetime.now(dt.UTC) + dt.timedelta(
            seconds=window_s + CODE_VALIDITY_MARGIN_S
        )
        self.spare = [code for code in self.spare if code.expires_at > valid_until]
        if len(self.spare) < needed:
            began = time.monotonic()
            made = self.data.create_codes(needed - len(self.spare))
            log(
                f"created {len(made)} codes in {time.monotonic() - began:.1f} s "
                f"({self.data.citizens} citizens so far)"
            )
            self.spare.extend(made)
        codes, self.spare = self.spare[:needed], self.spare[needed:]
        # Client i gets codes i, i + clients, ...: consecutive codes are different citizens'.
        self.pool.call(hand_codes, {i: codes[i::clients] for i in range(clients)})

    def take_back(self) -> list[ClientReport]:
        reports: list[ClientReport] = self.pool.call(take_report, None)
        for report in reports:
            self.spare.extend(report.unused)
            self.redeemed += report.redeemed_total
            self.failures_total += report.failures_total
            self.failures.extend(report.failures)
        self.server.check_alive()
        if self.failures_total:
            raise BenchmarkError(
                f"{self.failures_total} redemptions failed; first ones:\n  "
                + "\n  ".join(self.failures[:FAILURES_SHOWN])
                + f"\nserver log {self.server.log_path}:\n{self.server.log_tail(10)}"
            )
        return reports

    def window(
        self,
        factory: common.OperationFactory,
        params: Callable[[Window], Any],
        warmup_s: float,
        duration_s: float,
    ) -> tuple[list[ClientResult], Cpu, Window]:
        """Run one window on the pool, sampling CPU at its edges (as `common.observe` does), with
        the web server's processes counted apart from "other"."""
        window = Window.starting_soon(warmup_s, duration_s)
        samples: list[tuple[common.Sample, dict[int, float]]] = []

        def sampler() -> None:
            for instant in (window.measure_from, window.stop):
                time.sleep(max(0.0, instant - time.monotonic()))
                samples.append((common.sample(with_wal=False), _cpu_of(self.server.pids())))

        thread = threading.Thread(target=sampler, name="bench-sampler", daemon=True)
        thread.start()
        results = self.pool.run(factory, params(window), window)
        thread.join()
        (before, web_before), (after, web_after) = samples
        load = common.Load.between(before, after, self.pool.pids)
        web = sum(
            cpu - web_before.get(pid, 0.0) if web_before.get(pid, 0.0) <= cpu else cpu
            for pid, cpu in web_after.items()
        )
        cpu = Cpu(
            wall_s=load.wall_s,
            web_s=web,
            database_s=load.server_s,
            client_s=load.client_s,
            other_s=max(0.0, load.other_s - web),
            idle_s=load.idle_s,
        )
        return results, cpu, window

    def quiet(self) -> None:
        common.wait_for_quiet(self.args.quiet_wait_s, [*self.pool.pids, *self.server.pids()])
        common.vacuum_analyze(self.url)
        common.checkpoint()

    # The figures.

    def trial(self) -> None:
        """A short uncounted run: warms every worker up and tells how many codes a window
        needs (each client's rate until it ran out of codes, if it did)."""
        per_client = TRIAL_CODES_PER_CLIENT
        self.hand_out(per_client, TRIAL_WARMUP_S + TRIAL_DURATION_S)
        log(f"trial: {per_client} codes per client, {TRIAL_WARMUP_S + TRIAL_DURATION_S:g} s")
        _results, _cpu, window = self.window(
            redeem_closed, lambda w: ClosedLoop(w.stop), TRIAL_WARMUP_S, TRIAL_DURATION_S
        )
        reports = self.take_back()
        rate = 0.0
        for report in reports:
            ended = min(report.exhausted_at or window.stop, window.stop)
            rate += len(report.used) / max(ended - window.start, 1e-3)
        self.expected_rate = rate
        log(f"trial: about {rate:.0f} redemptions/s")

    def measure_healthz(self, label: str) -> float:
        args = self.args
        self.quiet()
        results, cpu, _window = self.window(
            healthz, lambda _w: None, args.warmup_s, args.duration_s
        )
        self.take_back()
        measured = common.Measured.of(results, _window)
        log(
            f"{label}: {measured.rate:.0f} req/s; latency p50 {measured.latency_p50_ms:.2f} ms, "
            f"p99 {measured.latency_p99_ms:.2f} ms; {cpu.describe(measured.ops, 'request')}"
        )
        return measured.rate

    def measure_peak(self, label: str) -> float:
        args = self.args
        for attempt in range(WINDOW_RETRIES_MAX + 1):
            window_s = args.warmup_s + args.duration_s + common.START_DELAY_S
            per_client = (
                math.ceil(self.expected_rate * window_s * CODES_SAFETY_FACTOR / args.clients)
                + CODES_SLACK_PER_CLIENT
            )
            self.hand_out(per_client, window_s)
            self.quiet()
            results, cpu, window = self.window(
                redeem_closed, lambda w: ClosedLoop(w.stop), args.warmup_s, args.duration_s
            )
            reports = self.take_back()
            measured = common.Measured.of(results, window)
            self.expected_rate = max(self.expected_rate, measured.rate)
            short = [r for r in reports if r.exhausted_at is not None]
            if short:
                log(
                    f"{label}: {len(short)} clients ran out of codes (attempt {attempt + 1}); "
                    "measuring again with more"
                )
                self.expected_rate *= 1.5
                continue
            log(
                f"{label}: {measured.rate:.0f} redemptions/s; latency p50 "
                f"{measured.latency_p50_ms:.1f} ms, p99 {measured.latency_p99_ms:.1f} ms; "
                f"{_steps(reports)}; {cpu.describe(measured.ops, 'redemption')}"
            )
            self.peak_latency.append((measured.latency_p50_ms, measured.latency_p99_ms))
            return measured.rate
        raise BenchmarkError("clients kept running out of codes")

    def measure_half_peak(self) -> None:
        args = self.args
        rate = max(self.redeem_rates) / 2
        window_s = args.warmup_s + args.duration_s + common.START_DELAY_S
        per_client = math.ceil(rate * window_s / args.clients) + CODES_SLACK_PER_CLIENT
        self.hand_out(per_client, window_s)
        self.quiet()
        log(f"open loop at {rate:.0f} redemptions/s (half the peak)")
        results, cpu, window = self.window(
            redeem_open,
            lambda w: OpenLoop(rate, args.clients, w.start, w.stop),
            args.warmup_s,
            args.duration_s,
        )
        reports = self.take_back()
        if any(r.exhausted_at is not None for r in reports):
            raise BenchmarkError("a client ran out of codes in the open loop")
        latencies = sorted(
            ended - due
            for report in reports
            for due, ended in report.scheduled
            if window.measure_from <= due < window.stop
        )
        if not latencies:
            raise BenchmarkError("no redemption was scheduled inside the open-loop window")
        p50 = statistics.median(latencies) * 1e3
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3
        measured = common.Measured.of(results, window)
        log(
            f"open loop: {measured.rate:.0f} redemptions/s done of {rate:.0f} scheduled; "
            f"latency from the scheduled start p50 {p50:.1f} ms, p99 {p99:.1f} ms, max "
            f"{latencies[-1] * 1e3:.1f} ms; {_steps(reports)}; "
            f"{cpu.describe(measured.ops, 'redemption')}"
        )
        self.half = Outcome(measured, cpu, reports)
        self.half_latency = (p50, p99)

    def measure_all(self) -> None:
        args = self.args
        self.trial()
        for number in range(1, args.rounds + 1):
            label = f"round {number}/{args.rounds}"
            self.healthz_rates.append(self.measure_healthz(f"{label} healthz_http_per_s"))
            self.redeem_rates.append(self.measure_peak(f"{label} redeem_http_per_s"))
        self.measure_half_peak()

    # Checks and figures.

    def verify(self) -> None:
        from agent_portal.models import CounterOperation, OperationKind  # noqa: PLC0415
        from kiosk.payments.models import CodeStatus, IssuedCode  # noqa: PLC0415

        with self.data.session() as session:
            payouts = session.scalar(
                select(func.count())
                .select_from(CounterOperation)
                .where(CounterOperation.kind == OperationKind.PAYOUT.value)
            )
            redeemed = session.scalar(
                select(func.count())
                .select_from(IssuedCode)
                .where(IssuedCode.status == CodeStatus.REDEEMED.value)
            )
            report = ledger.verify_ledger(session)
        log(
            f"verify: {self.redeemed} redemptions paid (303 to a receipt), {payouts} payouts in "
            f"counter_operations, {redeemed} codes redeemed; verify_ledger ok={report.ok}, "
            f"{report.accounts_checked} accounts, {report.transfers_checked} transfers"
        )
        problems = []
        if payouts != self.redeemed or redeemed != self.redeemed:
            problems.append(
                f"the clients saw {self.redeemed} payouts, the database has {payouts} payout "
                f"operations and {redeemed} redeemed codes"
            )
        if not report.ok:
            problems.extend(str(problem) for problem in report.problems[:FAILURES_SHOWN])
            problems.append(f"verify_ledger found {report.problems_total} problems")
        if problems:
            raise BenchmarkError("; ".join(problems))

    def emit_all(self) -> None:
        args = self.args
        server: dict[str, Any] = {
            "clients": args.clients,
            "workers": self.server.workers,
            "worker_class": "gthread" if self.server.threads > 1 else self.server.worker_class,
        }
        if self.server.threads > 1:
            server["threads"] = self.server.threads
        healthz: dict[str, Any] = dict(server)
        redeem: dict[str, Any] = {"requests_per_redemption": 3}
        if len(self.healthz_rates) > 1:
            healthz["rounds"] = [round(rate, 1) for rate in self.healthz_rates]
            redeem["rounds"] = [round(rate, 1) for rate in self.redeem_rates]
        best = max(range(len(self.redeem_rates)), key=self.redeem_rates.__getitem__)
        redeem["latency_p50_ms"] = round(self.peak_latency[best][0], 1)
        redeem["latency_p99_ms"] = round(self.peak_latency[best][1], 1)
        common.emit("healthz_http_per_s", max(self.healthz_rates), "req/s", **healthz)
        common.emit(
            "redeem_http_per_s",
            self.redeem_rates[best],
            "redemptions/s",
            baseline=max(self.healthz_rates),
            **redeem,
            **server,
        )
        assert self.half is not None
        half: dict[str, Any] = {
            "rate_per_s": round(max(self.redeem_rates) / 2, 1),
            "achieved_per_s": round(self.half.rate, 1),
            **server,
        }
        common.emit("redeem_http_p50_ms_at_half_peak", self.half_latency[0], "ms", **half)
        common.emit("redeem_http_p99_ms_at_half_peak", self.half_latency[1], "ms", **half)


def _percentile_ms(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1e3


def _steps(reports: Sequence[ClientReport]) -> str:
    """Median and p99 of each step's latency, as the client saw it."""
    parts = []
    for name in ("scan", "check", "pay"):
        values = [x for report in reports for x in getattr(report.steps, name)]
        parts.append(
            f"{name} p50 {_percentile_ms(values, 0.5):.1f}/p99 {_percentile_ms(values, 0.99):.1f}"
        )
    return "steps (ms) " + ", ".join(parts)


def _check(args: argparse.Namespace) -> None:
    for option, value in (
        ("--clients", args.clients),
        ("--workers", args.workers),
        ("--rounds", args.rounds),
        ("--agents-per-post-office", args.agents_per_post_office),
    ):
        if value < 1:
            raise BenchmarkError(f"{option} must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise BenchmarkError("--threads must be at least 1")
    if args.max_requests < 0:
        raise BenchmarkError("--max-requests must not be negative")
    if args.duration_s <= 0 or args.warmup_s < 0:
        raise BenchmarkError("--duration-s must be positive and --warmup-s not negative")
    if importlib.util.find_spec("gunicorn") is None:
        raise BenchmarkError("gunicorn is not installed in this environment")


def run(args: argparse.Namespace) -> None:
    _check(args)
    with contextlib.ExitStack() as stack:
        benchmark = RedeemBenchmark(args, stack)
        benchmark.measure_all()
        benchmark.verify()
        benchmark.emit_all()
