"""Crash consistency: money operations under load while gunicorn workers and PostgreSQL are killed.

The harness runs its OWN PostgreSQL server (initdb into a temporary folder, a free port, fsync
on; never the shared server) and gunicorn with several sync workers on it, set up like the redeem
benchmark (`bench.redeem`: agents with open drawers, verified citizens with money, who also get a
PIN here, and one citizen's market stall). Client threads then run, over HTTP through the real
pages, a mix of:

* withdrawals — a signed-in citizen makes a withdrawal code (POST /rut-tien; acknowledged by the
  303 to /ma/<code id>);
* payouts — an agent scans an acknowledged code, checks the ID card's last 4 digits and pays it
  out (acknowledged by the 303 to /quay/bien-nhan/<operation id>);
* cash-ins — an agent takes cash into a citizen's wallet with a request id (POST /quay/nap-tien;
  acknowledged by the 303 to the receipt);
* transfers — a citizen pays the stall with PIN and idempotency key (POST /tra-tien/xac-nhan;
  acknowledged by the 303 to /tra-tien/bien-lai/<transfer id>).

A failed request (reset connection, 5xx) is retried with the same request id / idempotency key a
few times, as a counter or a phone would; every acknowledged operation is recorded with its id.
Meanwhile a killer thread SIGKILLs, at random intervals, a random gunicorn worker (the master
starts a new one) or the whole PostgreSQL server (postmaster and backends, as a power cut would;
then it is started again and recovers from its WAL).

Afterwards, with the load stopped and PostgreSQL up: every acknowledged operation is in the ledger
exactly once (its transfers and its counter operation, with the acknowledged ids); nothing is
half done, acknowledged or not (every payout and cash-in transfer has its counter operation and
the other way round, every code's status agrees with its reservation — open, posted or voided —
and every reservation of a withdrawal has its code); and `ledger.verify_ledger` is clean (hash
chains, references, every total recomputed from the transfers).

Figures: `crash_kills_workers`, `crash_kills_postgres`, `crash_operations_acknowledged`,
`crash_operations_lost` (0), `crash_half_done` (0), `crash_ledger_verified` (1), and the
acknowledged operations by kind.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import http.client
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

import ledger
from bench import redeem
from bench.common import BenchmarkError, emit, log
from ledger.database import make_engine

CLAIM = (
    "Withdrawals, payouts, cash-ins and transfers over HTTP survive SIGKILLs of gunicorn workers "
    "and of the PostgreSQL server: every operation a client saw acknowledged is in the ledger "
    "exactly once, nothing unacknowledged is half done, all totals balance and the hash chains "
    "verify."
)

DEFAULT_KILLS = 10
DEFAULT_CLIENTS = 4
DEFAULT_WORKERS = 3
DEFAULT_CITIZENS = 12
# Between two kills (uniformly random): long enough for operations to complete in between.
KILL_INTERVAL_MIN_S = 1.0
KILL_INTERVAL_MAX_S = 4.0
# Share of the kills that take PostgreSQL down rather than one gunicorn worker.
POSTGRES_KILL_SHARE = 0.35
# Withdrawals of this amount, below the step-up and payout-approval thresholds.
AMOUNT_VND = 100_000
TRANSFER_VND = 20_000
CASH_IN_VND = 300_000
CITIZEN_PIN = "258147"
RETRIES_MAX = 6
RETRY_PAUSE_S = 0.5
HTTP_TIMEOUT_S = 20.0
POSTGRES_READY_TIMEOUT_S = 60.0
SERVE_AGAIN_TIMEOUT_S = 60.0
SETTLE_S = 3.0

_CODE_PAGE = re.compile(r"/ma/([0-9a-f-]{36})$")
_COUNTER_RECEIPT = re.compile(r"/quay/bien-nhan/([0-9a-f-]{36})$")
_MERCHANT_RECEIPT = re.compile(r"/tra-tien/bien-lai/([0-9a-f-]{36})$")
_CASH_IN_KEY = re.compile(r"cash-in:[0-9a-f-]{36}")
_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proofs crash", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--kills",
        type=int,
        default=DEFAULT_KILLS,
        help=f"SIGKILLs in all, workers and PostgreSQL (default: {DEFAULT_KILLS}; the full "
        "proof is 50 or more)",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=DEFAULT_CLIENTS,
        help=f"client threads, each an agent and a citizen (default: {DEFAULT_CLIENTS})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"gunicorn sync workers (default: {DEFAULT_WORKERS})",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    return parser


# --- Our own PostgreSQL --------------------------------------------------------------------------


class Postgres:
    """A throwaway PostgreSQL cluster on a free port; killed with SIGKILL and started again."""

    def __init__(self, folder: Path) -> None:
        if _BIN is None or not (_BIN / "initdb").exists():
            raise BenchmarkError(
                "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
                "(Debian: apt-get install postgresql)"
            )
        self.bin = _BIN
        self.folder = folder
        self.data = folder / "data"
        self.log_path = folder / "postgres.log"
        self.port = redeem._free_port()
        self.process: subprocess.Popen[bytes] | None = None
        # initdb and postgres refuse to run as root: run them as the postgres user then.
        self.user = "postgres" if os.geteuid() == 0 else None
        folder.mkdir(parents=True, exist_ok=True)
        if self.user:
            folder.parent.chmod(0o711)  # mkdtemp's 0700 would keep the postgres user out
            shutil.chown(folder, self.user)
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"])
        self.start()

    def _run(self, command: list[str]) -> None:
        done = subprocess.run(command, capture_output=True, text=True, user=self.user, check=False)
        if done.returncode != 0:
            raise BenchmarkError(f"{command[0]} failed:\n{done.stdout}{done.stderr}")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/softatm"

    def start(self) -> None:
        with self.log_path.open("ab") as output:
            self.process = subprocess.Popen(
                [
                    str(self.bin / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.folder}",
                    "-c",
                    "fsync=on",
                    "-c",
                    "synchronous_commit=on",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "shared_buffers=32MB",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                user=self.user,
                start_new_session=True,
            )
        deadline = time.monotonic() + POSTGRES_READY_TIMEOUT_S
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchmarkError(f"postgres exited; see {self.log_path}")
            engine = make_engine(admin, poolclass=NullPool)
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                return
            except Exception:
                time.sleep(0.2)
            finally:
                engine.dispose()
        raise BenchmarkError(f"postgres did not accept connections; see {self.log_path}")

    def create_database(self) -> None:
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        engine = make_engine(admin, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with engine.connect() as connection:
            connection.execute(text("CREATE DATABASE softatm"))
        engine.dispose()

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend at once (its own process group)."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


# --- The load ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    citizen_id: int
    phone: str
    wallet: int
    last4: str


@dataclass(slots=True)
class Acknowledged:
    """What the clients saw acknowledged, by kind: the ids to find in the database."""

    withdrawals: list[uuid.UUID] = field(default_factory=list)
    payouts: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)  # code, operation
    cash_ins: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)  # request, op
    transfers: list[tuple[str, uuid.UUID]] = field(default_factory=list)  # key, transfer

    def total(self) -> int:
        return len(self.withdrawals) + len(self.payouts) + len(self.cash_ins) + len(self.transfers)


@dataclass(slots=True)
class Shared:
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: Acknowledged = field(default_factory=Acknowledged)
    # Acknowledged codes not paid out yet, with their citizen.
    to_pay: list[tuple[uuid.UUID, Person]] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)


class Client:
    """One agent at a counter and one citizen on a phone, over their own connections."""

    def __init__(
        self,
        index: int,
        *,
        port: int,
        config: redeem.ClientConfig,
        person: Person,
        people: Sequence[Person],
        stall_code: str,
        codes_engine: object,
        shared: Shared,
        rng: random.Random,
    ) -> None:
        self.agent = redeem.CounterClient(index, config)
        self.agent.browser.connection.timeout = HTTP_TIMEOUT_S
        self.phone = redeem.Browser(port)
        self.phone.connection.timeout = HTTP_TIMEOUT_S
        self.person = person
        self.people = people
        self.stall_code = stall_code
        self.engine = codes_engine
        self.shared = shared
        self.rng = rng
        self.phone_csrf = ""

    def _retrying(self, what: str, attempt: Callable[[], bool | None]) -> None:
        """Run `attempt` until it answers True (acknowledged) or False (refused: stop)."""
        self.shared.attempts[what] += 1
        for _ in range(RETRIES_MAX):
            if self.shared.stop.is_set():
                return
            try:
                answer = attempt()
            except (OSError, http.client.HTTPException, BenchmarkError, DBAPIError) as error:
                answer = None
                self.shared.failures[f"{what} {type(error).__name__}"] += 1
                self.agent.browser.connection.close()
                self.phone.connection.close()
            if answer is not None:
                return
            time.sleep(RETRY_PAUSE_S)

    def _refused(self, reply: redeem.Reply) -> bool | None:
        """False for a refusal page (the operation did not happen), None for a server error."""
        self.shared.failures[f"HTTP {reply.status}"] += 1
        return False if reply.status < 500 else None

    def sign_in(self) -> None:
        def agent() -> bool:
            self.agent.sign_in()
            return True

        def phone() -> bool:
            token = self.phone.csrf_token("/dang-nhap")
            reply = self.phone.request(
                "POST",
                "/dang-nhap",
                {"phone": self.person.phone, "pin": CITIZEN_PIN, "csrf_token": token},
            )
            if reply.status not in (302, 303):
                raise BenchmarkError(f"citizen sign-in answered {reply.status}")
            self.phone_csrf = self.phone.csrf_token("/rut-tien")
            return True

        for step in (agent, phone):
            for attempt in range(RETRIES_MAX):
                try:
                    step()
                    break
                except (OSError, http.client.HTTPException, BenchmarkError):
                    if attempt == RETRIES_MAX - 1:
                        raise
                    time.sleep(1.0)

    # The four operations.

    def withdraw(self) -> bool | None:
        # Not retried with the same request: a code has no idempotency key (a second one is a
        # second code, which the check below still accounts for).
        reply = self.phone.request(
            "POST", "/rut-tien", {"so_tien": str(AMOUNT_VND), "csrf_token": self.phone_csrf}
        )
        found = _CODE_PAGE.search(reply.location or "")
        if reply.status == 303 and found:
            code_id = uuid.UUID(found.group(1))
            with self.shared.lock:
                self.shared.acked.withdrawals.append(code_id)
                self.shared.to_pay.append((code_id, self.person))
            return True
        return self._refused(reply)

    def pay_out(self, code_id: uuid.UUID, person: Person) -> bool | None:
        from kiosk.payments.models import IssuedCode  # noqa: PLC0415

        with self.engine.connect() as connection:  # type: ignore[attr-defined]
            row = connection.execute(
                select(IssuedCode.created_at, IssuedCode.expires_at).where(IssuedCode.id == code_id)
            ).one()
        code = redeem.Code(code_id, person.wallet, AMOUNT_VND, row[0], row[1], person.last4, 0)
        browser, csrf = self.agent.browser, self.agent.csrf
        reply = browser.request(
            "POST", redeem.SCAN_PATH, {"ma": self.agent.fresh_token(code), "csrf_token": csrf}
        )
        found = redeem._TICKET.search(reply.body)
        if reply.status >= 500 or found is None:
            # A refusal: already paid by an attempt whose answer was lost, say.
            return self._refused(reply)
        ticket = found.group(1).decode()
        form = {"bon_so_cuoi": person.last4, "csrf_token": csrf}
        reply = browser.request("POST", f"/quay/ma/{ticket}/doi-chieu", form)
        if reply.status != 200:
            return self._refused(reply)
        form["khop_khuon_mat"] = "co"
        reply = browser.request("POST", f"/quay/ma/{ticket}/chi-tra", form)
        paid = _COUNTER_RECEIPT.search(reply.location or "")
        if reply.status == 303 and paid:
            with self.shared.lock:
                self.shared.acked.payouts.append((code_id, uuid.UUID(paid.group(1))))
            return True
        return self._refused(reply)

    def cash_in(self, request_id: uuid.UUID, person: Person) -> bool | None:
        reply = self.agent.browser.request(
            "POST",
            "/quay/nap-tien",
            {
                "nguoi_dan": str(person.citizen_id),
                "so_tien": str(CASH_IN_VND),
                "ma_yeu_cau": str(request_id),
                "xac_nhan": "co",
                "csrf_token": self.agent.csrf,
            },
        )
        found = _COUNTER_RECEIPT.search(reply.location or "")
        if reply.status == 303 and found:
            with self.shared.lock:
                self.shared.acked.cash_ins.append((request_id, uuid.UUID(found.group(1))))
            return True
        return self._refused(reply)

    def transfer(self, key: str) -> bool | None:
        reply = self.phone.request(
            "POST",
            "/tra-tien/xac-nhan",
            {
                "ma_quay": self.stall_code,
                "so_tien": str(TRANSFER_VND),
                "ma_pin": CITIZEN_PIN,
                "khoa": key,
                "csrf_token": self.phone_csrf,
            },
        )
        found = _MERCHANT_RECEIPT.search(reply.location or "")
        if reply.status == 303 and found:
            with self.shared.lock:
                self.shared.acked.transfers.append((key, uuid.UUID(found.group(1))))
            return True
        return self._refused(reply)

    def run(self) -> None:
        while not self.shared.stop.is_set():
            choice = self.rng.random()
            pending = None
            if choice < 0.35:
                with self.shared.lock:
                    if self.shared.to_pay:
                        pending = self.shared.to_pay.pop(0)
            if pending is not None:
                code_id, person = pending
                self._retrying("payout", functools.partial(self.pay_out, code_id, person))
            elif choice < 0.6:
                self._retrying("withdrawal", self.withdraw)
            elif choice < 0.8:
                request_id = uuid.uuid4()
                person = self.rng.choice(self.people)
                self._retrying("cash_in", functools.partial(self.cash_in, request_id, person))
            else:
                key = secrets.token_urlsafe(16)
                self._retrying("transfer", functools.partial(self.transfer, key))

    def close(self) -> None:
        self.agent.close()
        self.phone.close()


# --- The killer ----------------------------------------------------------------------------------


def _workers(server: redeem.WebServer) -> list[int]:
    return [pid for pid in server.pids() if pid != server.process.pid]


def _wait_serving(server: redeem.WebServer) -> None:
    deadline = time.monotonic() + SERVE_AGAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        server.check_alive()
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection(redeem.HOST, server.port, timeout=5)
            connection.request("GET", redeem.HEALTHZ_PATH)
            if connection.getresponse().status == 200 and len(_workers(server)) >= 1:
                connection.close()
                return
            connection.close()
        time.sleep(0.3)
    raise BenchmarkError("gunicorn did not serve again after a kill")


def _killer(
    *,
    kills: int,
    server: redeem.WebServer,
    postgres: Postgres,
    shared: Shared,
    rng: random.Random,
    done: Counter[str],
    errors: list[BaseException],
) -> None:
    try:
        for number in range(kills):
            time.sleep(rng.uniform(KILL_INTERVAL_MIN_S, KILL_INTERVAL_MAX_S))
            workers = _workers(server)
            if rng.random() < POSTGRES_KILL_SHARE or not workers:
                postgres.kill()
                done["postgres"] += 1
                log(f"kill {number + 1}/{kills}: PostgreSQL; starting it again")
                time.sleep(rng.uniform(0.0, 1.0))
                postgres.start()
            else:
                victim = rng.choice(workers)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGKILL)
                done["workers"] += 1
                log(f"kill {number + 1}/{kills}: gunicorn worker {victim}")
            _wait_serving(server)
    except BaseException as error:
        errors.append(error)
    finally:
        time.sleep(SETTLE_S)
        shared.stop.set()


# --- The checks ----------------------------------------------------------------------------------


def _verify(url: str, acked: Acknowledged) -> tuple[int, int, bool, list[str]]:
    """(acknowledged operations lost or duplicated, half-done operations, ledger ok, problems)."""
    from agent_portal.models import CounterOperation, OperationKind  # noqa: PLC0415
    from kiosk.payments.models import CodeKind, CodeStatus, IssuedCode  # noqa: PLC0415

    engine = make_engine(url, poolclass=NullPool)
    lost: list[str] = []
    half: list[str] = []
    Transfer = ledger.Transfer
    try:
        with engine.connect() as connection:
            keys = Counter(connection.scalars(select(Transfer.idempotency_key)))
            transfers = {
                row.id: row
                for row in connection.execute(
                    select(
                        Transfer.id,
                        Transfer.idempotency_key,
                        Transfer.phase,
                        Transfer.pending_id,
                    )
                )
            }
            by_key: dict[str, list[object]] = {}
            for row in transfers.values():
                by_key.setdefault(row.idempotency_key, []).append(row)
            operations = {
                row.id: row
                for row in connection.execute(
                    select(
                        CounterOperation.id,
                        CounterOperation.kind,
                        CounterOperation.code_id,
                        CounterOperation.transfer_id,
                    )
                )
            }
            codes = {
                row.id: row
                for row in connection.execute(
                    select(
                        IssuedCode.id,
                        IssuedCode.kind,
                        IssuedCode.status,
                        IssuedCode.pending_transfer_id,
                    )
                )
            }
            open_reservations = set(
                connection.scalars(select(ledger.schema.OpenReservation.pending_id))
            )
            resolutions = {
                row.pending_id: row for row in transfers.values() if row.pending_id is not None
            }
        # Acknowledged operations: each exactly once, with the acknowledged ids.
        for code_id in acked.withdrawals:
            code = codes.get(code_id)
            if code is None or keys[f"code:{code_id}"] != 1:
                lost.append(
                    f"withdrawal {code_id}: code {code is not None}, reservations "
                    f"{keys[f'code:{code_id}']}"
                )
        for code_id, operation_id in acked.payouts:
            operation = operations.get(operation_id)
            if (
                operation is None
                or operation.code_id != code_id
                or keys[f"redeem:{code_id}:cash"] != 1
                or codes[code_id].status != CodeStatus.REDEEMED.value
            ):
                lost.append(f"payout of {code_id} (operation {operation_id})")
        for request_id, operation_id in acked.cash_ins:
            operation = operations.get(operation_id)
            key = f"cash-in:{request_id}"
            if (
                operation is None
                or keys[key] != 1
                or transfers[operation.transfer_id].idempotency_key != key
            ):
                lost.append(f"cash-in {request_id} (operation {operation_id})")
        for key, transfer_id in acked.transfers:
            transfer = transfers.get(transfer_id)
            if transfer is None or keys[f"merchant:{key}"] != 1:
                lost.append(f"transfer {key} ({transfer_id})")
        # Nothing half done, acknowledged or not.
        for operation in operations.values():
            if operation.transfer_id not in transfers:
                half.append(f"operation {operation.id} without its transfer")
            if operation.kind == OperationKind.PAYOUT.value:
                code = codes.get(operation.code_id)
                if code is None or code.status != CodeStatus.REDEEMED.value:
                    half.append(f"payout {operation.id}: code not redeemed")
                elif keys[f"redeem:{code.id}:cash"] != 1:
                    half.append(
                        f"payout {operation.id}: {keys[f'redeem:{code.id}:cash']} cash legs"
                    )
            if operation.kind == OperationKind.CASH_IN.value:
                key = transfers[operation.transfer_id].idempotency_key
                if not key.startswith("cash-in:") or keys[key] != 1:
                    half.append(f"cash-in {operation.id}: transfer key {key} x{keys[key]}")
        payout_codes = {
            op.code_id for op in operations.values() if op.kind == OperationKind.PAYOUT.value
        }
        cash_in_transfers = {
            op.transfer_id for op in operations.values() if op.kind == OperationKind.CASH_IN.value
        }
        for key, rows in by_key.items():
            if key.startswith("redeem:") and key.endswith(":cash"):
                code_id = uuid.UUID(key.split(":")[1])
                if code_id not in payout_codes:
                    half.append(f"{key} without its counter operation")
            if _CASH_IN_KEY.fullmatch(key) and not any(
                row.id in cash_in_transfers  # type: ignore[attr-defined]
                for row in rows
            ):
                half.append(f"{key} without its counter operation")
            if key.startswith("code:"):
                code = codes.get(uuid.UUID(key.removeprefix("code:")))
                reserved = [row.id for row in rows]  # type: ignore[attr-defined]
                if code is None or code.pending_transfer_id not in reserved:
                    half.append(f"{key}: reservation without its code")
        for code in codes.values():
            resolution = resolutions.get(code.pending_transfer_id)
            is_open = code.pending_transfer_id in open_reservations
            phase = None if resolution is None else resolution.phase
            status = code.status
            coherent = (
                (status == CodeStatus.OPEN.value and is_open and phase is None)
                or (
                    status == CodeStatus.REDEEMED.value
                    and not is_open
                    and phase == ledger.Phase.POST_PENDING.value
                    and (code.kind != CodeKind.WITHDRAWAL.value or code.id in payout_codes)
                )
                or (
                    status in (CodeStatus.CANCELLED.value, CodeStatus.EXPIRED.value)
                    and not is_open
                    and phase == ledger.Phase.VOID_PENDING.value
                )
            )
            if not coherent:
                half.append(f"code {code.id}: status {status}, open {is_open}, resolution {phase}")
        with Session(engine) as session:
            report = ledger.verify_ledger(session)
        problems = lost[:5] + half[:5] + report.problems[:5]
        log(
            f"verify: {len(lost)} acknowledged operations lost or duplicated, {len(half)} half "
            f"done; verify_ledger ok={report.ok} ({report.accounts_checked} accounts, "
            f"{report.transfers_checked} transfers)"
        )
        return len(lost), len(half), report.ok, problems
    finally:
        engine.dispose()


# --- Set-up and run ------------------------------------------------------------------------------


def _people(data: redeem.Data, count: int) -> list[Person]:
    from kiosk.citizens.credentials import hash_pin  # noqa: PLC0415
    from kiosk.citizens.models import Citizen  # noqa: PLC0415

    data._create_citizens(count)
    with data.session() as session:
        session.execute(
            update(Citizen).values(
                pin_hash=hash_pin(CITIZEN_PIN), pin_changed_at=dt.datetime.now(dt.UTC)
            )
        )
        rows = session.execute(
            select(Citizen.id, Citizen.phone, Citizen.wallet_account_id, Citizen.citizen_id_last4)
        ).all()
    return [Person(*row) for row in rows]


def _stall(data: redeem.Data, owner: Person) -> str:
    from kiosk.citizens.models import Citizen  # noqa: PLC0415
    from kiosk.payments import merchants  # noqa: PLC0415

    with data.session() as session:
        citizen = session.get(Citizen, owner.citizen_id)
        assert citizen is not None
        merchant = merchants.register_stall(
            session, citizen, "Tạp hoá Cô Lan", dt.datetime.now(dt.UTC)
        )
        return merchant.stall_code


@contextlib.contextmanager
def _temporary_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="softatm_crash_"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(args: argparse.Namespace) -> bool:
    if args.kills < 0 or args.clients < 1 or args.workers < 2:
        raise BenchmarkError("--kills must not be negative, --clients at least 1, --workers 2")
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    rng = random.Random(seed)
    log(f"seed {seed}")
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(_temporary_folder())
        postgres = Postgres(folder / "pg")
        stack.callback(postgres.close)
        postgres.create_database()
        log(f"our own PostgreSQL on port {postgres.port} (log {postgres.log_path})")
        from kiosk.database import upgrade  # noqa: PLC0415

        upgrade(postgres.url)
        config = redeem.ServerConfig(postgres.url, folder / "keys", secrets.token_urlsafe(48))
        data = redeem.Data(config, AMOUNT_VND)
        stack.callback(data.dispose)
        logins = data.create_staff(args.clients, 1)
        people = _people(data, max(DEFAULT_CITIZENS, args.clients + 1))
        stall_code = _stall(data, people[-1])
        payers = people[:-1]
        server_args = argparse.Namespace(
            workers=args.workers,
            worker_class="sync",
            threads=None,
            max_requests=0,
            wsgi_app="kiosk.wsgi:app",
        )
        server = redeem.WebServer(server_args, config, folder / "gunicorn.log")
        stack.callback(server.close)
        codes_engine = make_engine(postgres.url, poolclass=NullPool)
        stack.callback(codes_engine.dispose)
        shared = Shared()
        client_config = redeem.ClientConfig(server.port, config.keys_dir, tuple(logins))
        clients = [
            Client(
                i,
                port=server.port,
                config=client_config,
                person=payers[i % len(payers)],
                people=payers,
                stall_code=stall_code,
                codes_engine=codes_engine,
                shared=shared,
                rng=random.Random(rng.random()),
            )
            for i in range(args.clients)
        ]
        for client in clients:
            stack.callback(client.close)
            client.sign_in()
        log(f"{args.clients} clients signed in; load with {args.kills} kills")
        kills: Counter[str] = Counter()
        errors: list[BaseException] = []
        killer = threading.Thread(
            target=_killer,
            kwargs={
                "kills": args.kills,
                "server": server,
                "postgres": postgres,
                "shared": shared,
                "rng": random.Random(rng.random()),
                "done": kills,
                "errors": errors,
            },
        )
        threads = [threading.Thread(target=client.run) for client in clients]
        began = time.monotonic()
        for thread in [*threads, killer]:
            thread.start()
        killer.join()
        for thread in threads:
            thread.join()
        if errors:
            raise BenchmarkError(f"the killer failed: {errors[0]!r}")
        log(
            f"load over after {time.monotonic() - began:.0f} s: attempts {dict(shared.attempts)}, "
            f"failed tries and refusals {dict(shared.failures)}"
        )
        server.close()
        acked = shared.acked
        lost, half, verified, problems = _verify(postgres.url, acked)
        emit("crash_kills_workers", kills["workers"], "kills", workers=args.workers, seed=seed)
        emit("crash_kills_postgres", kills["postgres"], "kills")
        emit(
            "crash_operations_acknowledged",
            acked.total(),
            "operations",
            withdrawals=len(acked.withdrawals),
            payouts=len(acked.payouts),
            cash_ins=len(acked.cash_ins),
            transfers=len(acked.transfers),
            clients=args.clients,
        )
        emit("crash_operations_lost", lost, "operations")
        emit("crash_half_done", half, "operations")
        emit("crash_ledger_verified", 1 if verified else 0, "bool")
        if problems:
            log("problems:\n  " + "\n  ".join(str(p) for p in problems))
        return lost == 0 and half == 0 and verified and acked.total() > 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        ok = run(args)
    except BenchmarkError as error:
        log(f"crash FAILED: {error}")
        return 1
    log(f"crash: {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1
