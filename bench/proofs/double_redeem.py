"""Double redemption over HTTP: many counters race to pay out the same withdrawal codes.

The set-up is the redeem benchmark's (`bench.redeem`): a scratch PostgreSQL database migrated like
production, gunicorn with the deploy configuration and several sync workers, one agent per client
signed in through the real pages (password, then TOTP), each at a post office of its own with an
open, funded drawer; the codes are real withdrawal codes with their ledger reservations.

For each code in turn, every client scans it (a freshly signed token, as the citizen's phone
shows), checks the ID card's last 4 digits, and then — all released at once by a barrier — asks
to pay it out. Exactly one payout per code may succeed (303 to a receipt); every other attempt
must be refused with a page, never a server error.

Afterwards, from the database: each code has exactly one payout in `counter_operations`, is
`redeemed`, its reservation is posted once and its cash leg (`redeem:<id>:cash`) exists once; the
number of payouts the clients saw equals the codes; and `ledger.verify_ledger` is clean (hash
chains, references, totals).

Figures: `double_redeem_codes`, `double_redeem_attempts`, `double_redeem_paid` (= codes),
`double_redeem_double_payments` (0), `double_redeem_server_errors` (0),
`double_redeem_ledger_verified` (1).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import secrets
import tempfile
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

import ledger
from bench import common, redeem
from bench.common import BenchmarkError, log

CLAIM = (
    "Many counters paying out the same withdrawal codes at the same instant, over HTTP through "
    "gunicorn with several workers on PostgreSQL, pay each code exactly once; the losers get a "
    "refusal page, never a server error, and the ledger verifies afterwards."
)

DEFAULT_CODES = 50
DEFAULT_CLIENTS = 8
DEFAULT_WORKERS = 4
BARRIER_TIMEOUT_S = 120.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proofs double-redeem", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--codes", type=int, default=DEFAULT_CODES, help=f"codes (default: {DEFAULT_CODES})"
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=DEFAULT_CLIENTS,
        help=f"counters racing for every code (default: {DEFAULT_CLIENTS})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"gunicorn sync workers (default: {DEFAULT_WORKERS})",
    )
    return parser


@dataclass(slots=True)
class Tally:
    paid: Counter[str]
    refused: int = 0
    # Attempts that held a checked ticket when the barrier released them: real racers.
    raced: int = 0
    server_errors: int = 0
    failures: list[str] | None = None

    def fail(self, what: str) -> None:
        if self.failures is None:
            self.failures = []
        if len(self.failures) < redeem.FAILURES_SHOWN:
            self.failures.append(what)


def _attempt(
    client: redeem.CounterClient,
    code: redeem.Code,
    barrier: threading.Barrier,
    tally: Tally,
    lock: threading.Lock,
) -> None:
    """Scan and check the code, wait for every other client, then ask to pay it out."""
    browser = client.browser
    ticket = None
    try:
        reply = browser.request(
            "POST", redeem.SCAN_PATH, {"ma": client.fresh_token(code), "csrf_token": client.csrf}
        )
        found = redeem._TICKET.search(reply.body)
        if reply.status == 200 and found is not None:
            ticket = found.group(1).decode()
            form = {"bon_so_cuoi": code.last4, "csrf_token": client.csrf}
            reply = browser.request("POST", f"/quay/ma/{ticket}/doi-chieu", form)
            if reply.status != 200 or b"/chi-tra" not in reply.body:
                ticket = None
    except (OSError, http.client.HTTPException) as error:
        browser.connection.close()
        with lock:
            tally.server_errors += 1
            tally.fail(f"{client.login.username} scan: {type(error).__name__}: {error}")
        reply = None
    barrier.wait(BARRIER_TIMEOUT_S)
    if reply is not None and reply.status >= 500:
        with lock:
            tally.server_errors += 1
            tally.fail(f"{client.login.username} scan/check answered {reply.status}")
        return
    if ticket is None:
        with lock:
            tally.refused += 1
        return
    with lock:
        tally.raced += 1
    form = {"bon_so_cuoi": code.last4, "csrf_token": client.csrf, "khop_khuon_mat": "co"}
    try:
        reply = browser.request("POST", f"/quay/ma/{ticket}/chi-tra", form)
    except (OSError, http.client.HTTPException) as error:
        browser.connection.close()
        with lock:
            tally.server_errors += 1
            tally.fail(f"{client.login.username} pay: {type(error).__name__}: {error}")
        return
    with lock:
        if reply.status == 303 and redeem._RECEIPT.search(reply.location or ""):
            tally.paid[str(code.code_id)] += 1
        elif reply.status >= 500:
            tally.server_errors += 1
            tally.fail(f"{client.login.username} pay answered {reply.status}")
        else:
            tally.refused += 1


def _verify(data: redeem.Data, codes: Sequence[redeem.Code]) -> tuple[int, int, bool, list[str]]:
    """(codes paid once, codes paid more than once, ledger verified, problems) from the database."""
    from agent_portal.models import CounterOperation, OperationKind  # noqa: PLC0415
    from kiosk.payments.models import CodeStatus, IssuedCode  # noqa: PLC0415

    ids = [code.code_id for code in codes]
    problems: list[str] = []
    with data.session() as session:
        payouts = Counter(
            session.scalars(
                select(CounterOperation.code_id).where(
                    CounterOperation.kind == OperationKind.PAYOUT.value,
                    CounterOperation.code_id.in_(ids),
                )
            )
        )
        statuses = dict(
            session.execute(select(IssuedCode.id, IssuedCode.status).where(IssuedCode.id.in_(ids)))
            .tuples()
            .all()
        )
        cash_legs = Counter(
            session.scalars(
                select(ledger.Transfer.idempotency_key).where(
                    ledger.Transfer.idempotency_key.in_([f"redeem:{i}:cash" for i in ids])
                )
            )
        )
        resolutions = Counter(
            session.scalars(
                select(ledger.Transfer.idempotency_key).where(
                    ledger.Transfer.idempotency_key.in_([f"redeem:{i}" for i in ids]),
                    ledger.Transfer.pending_id.is_not(None),
                )
            )
        )
        report = ledger.verify_ledger(session)
        total_payouts = session.scalar(
            select(func.count())
            .select_from(CounterOperation)
            .where(CounterOperation.kind == OperationKind.PAYOUT.value)
        )
    once = 0
    twice = 0
    for code_id in ids:
        counts = (
            payouts[code_id],
            cash_legs[f"redeem:{code_id}:cash"],
            resolutions[f"redeem:{code_id}"],
        )
        if counts == (1, 1, 1) and statuses.get(code_id) == CodeStatus.REDEEMED.value:
            once += 1
        else:
            if max(counts) > 1:
                twice += 1
            problems.append(
                f"code {code_id}: {counts[0]} payouts, {counts[1]} cash legs, {counts[2]} "
                f"resolutions, status {statuses.get(code_id)}"
            )
    if total_payouts != len(ids):
        problems.append(f"{total_payouts} payouts in counter_operations for {len(ids)} codes")
    if not report.ok:
        problems.extend(report.problems[: redeem.FAILURES_SHOWN])
    log(
        f"verify: {once} codes paid exactly once, {twice} paid more than once; verify_ledger "
        f"ok={report.ok} ({report.accounts_checked} accounts, {report.transfers_checked} transfers)"
    )
    return once, twice, report.ok, problems


def run(args: argparse.Namespace) -> bool:
    if args.codes < 1 or args.clients < 2 or args.workers < 1:
        raise BenchmarkError("--codes must be at least 1, --clients 2, --workers 1")
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(common.scratch_database("double_redeem"))
        keys_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="softatm_proof_")))
        config = redeem.ServerConfig(url, keys_dir / "keys", secrets.token_urlsafe(48))
        from kiosk.database import upgrade  # noqa: PLC0415

        log("migrating the database")
        upgrade(url)
        data = redeem.Data(config, redeem.DEFAULT_AMOUNT_VND)
        stack.callback(data.dispose)
        logins = data.create_staff(args.clients, 1)
        codes = data.create_codes(args.codes)
        server_args = argparse.Namespace(
            workers=args.workers,
            worker_class="sync",
            threads=None,
            max_requests=0,
            wsgi_app="kiosk.wsgi:app",
        )
        server = redeem.WebServer(server_args, config, keys_dir / "gunicorn.log")
        stack.callback(server.close)
        client_config = redeem.ClientConfig(server.port, config.keys_dir, tuple(logins))
        clients = [redeem.CounterClient(i, client_config) for i in range(args.clients)]
        for client in clients:
            stack.callback(client.close)
            client.sign_in()
        log(f"{args.clients} counters signed in; racing for {len(codes)} codes")
        tally = Tally(paid=Counter())
        lock = threading.Lock()
        for code in codes:
            barrier = threading.Barrier(len(clients))
            threads = [
                threading.Thread(target=_attempt, args=(client, code, barrier, tally, lock))
                for client in clients
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        server.check_alive()
        attempts = len(codes) * len(clients)
        seen_paid = sum(tally.paid.values())
        seen_twice = sum(1 for count in tally.paid.values() if count > 1)
        log(
            f"clients saw {seen_paid} payouts ({seen_twice} codes paid twice), {tally.refused} "
            f"refusals, {tally.server_errors} server errors in {attempts} attempts"
        )
        once, twice, verified, problems = _verify(data, codes)
        double_payments = max(twice, seen_twice)
        common.emit("double_redeem_codes", len(codes), "codes", workers=args.workers)
        common.emit(
            "double_redeem_attempts",
            attempts,
            "attempts",
            clients=args.clients,
            raced_to_payout=tally.raced,
        )
        common.emit("double_redeem_paid", once, "codes", seen_by_clients=seen_paid)
        common.emit("double_redeem_double_payments", double_payments, "codes")
        common.emit("double_redeem_server_errors", tally.server_errors, "responses")
        common.emit("double_redeem_ledger_verified", 1 if verified else 0, "bool")
        if tally.failures:
            log("first server errors:\n  " + "\n  ".join(tally.failures))
        if problems:
            log("problems:\n  " + "\n  ".join(problems[:10]))
        return (
            not problems
            and once == len(codes) == seen_paid
            and double_payments == 0
            and tally.server_errors == 0
            and verified
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        ok = run(args)
    except BenchmarkError as error:
        log(f"double-redeem FAILED: {error}")
        return 1
    log(f"double-redeem: {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1
