"""Ledger benchmark: transfers per second through the Python API, against pgbench.

Figures (stdout, JSON lines), all measured in this run, with durable commits:

* `ledger_pgbench_tps` — `pgbench -N` (simple-update), the baseline of what this server commits;
* `ledger_single_tps` — one transfer per commit, with `commit_transfer` (a transaction of its own:
  one round trip);
* `ledger_single_in_session_tps` — one `post_transfer` per commit in a Session, as the product's
  flows post (they write rows of their own in the same transaction): BEGIN, the call, COMMIT —
  three round trips;
* `ledger_batch_tps` — `commit_transfers` of `--batch-size` transfers per commit;
* `ledger_reserve_post_pairs_per_s` — `Reserve` then `PostPending`, each its own commit;
* `ledger_hot_account_tps` — a payment whose transfer also credits one shared, sharded fee
  account (a fee leg: `Post(..., fee_account_id=..., fee_amount=...)`), one per commit, with
  `commit_transfer`; its ratio is to `ledger_single_tps`;
* `ledger_hot_account_in_session_tps` — the same in a Session; its ratio is to
  `ledger_single_in_session_tps`;
* `ledger_hot_account_linked_tps` — the payment and its fee as two linked transfers in one
  commit (as the counter posts a fee on a withdrawal); its ratio is to `ledger_single_tps`;
* `ledger_hot_account_unsharded_tps` — as `ledger_hot_account_tps` with an unsharded fee account
  (what sharding buys);
* `ledger_sqlite_single_tps` — one transfer per commit on a SQLite file (WAL, one writer).

The PostgreSQL figures run in a scratch database of their own, migrated with Alembic like
production, with `--wallets` citizen wallets funded up front in batches. `--clients` clients, each
with its own connection and Session, run in `--processes` processes (see
`common.client_processes`). Payments go between random pairs of wallets so that what is measured
is the ledger, not a queue on one pair's row locks. Before each window the database is vacuumed
and analysed (autovacuum may be off; pgbench vacuums before its runs too) and checkpointed.

The machine may be shared, so every figure is measured `--rounds` times, round-robin with its
baseline, and the best round is reported (all rounds are in the JSON). Within a round each
figure comes right after its baseline where it can, and the batches, which insert the most, come
last: the tables grow through a run past the server's shared buffers, and the same transfer
costs the server more CPU on larger tables. At the end
`ledger.verify_ledger` replays every hash chain and total: a figure from a broken ledger is worth
nothing, so a failed verification fails the benchmark.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

import ledger
from bench import common
from bench.common import BenchmarkError, ClientPool, Window, log
from kiosk.database import upgrade
from ledger import AccountKind, Post, PostPending, Reserve, Transfer
from ledger.database import make_engine

FUNDING_PER_WALLET_VND = 10**12
# Small payments against a huge float: no wallet can run dry, whatever the random walk does.
PAYMENT_MAX_VND = 100_000
FEE_VND = 1_100
RESERVATION_TIMEOUT_S = 3_600
FUNDING_BATCH = 1_000
PROBLEMS_SHOWN_MAX = 20
# A batch poster is a back-office job (a disbursement run, a settlement), so a few run at once,
# not one per teller. A few also keep the server busiest: on the 2-CPU development machine
# 4 clients x 500 transfers used 0.19 ms of server CPU per transfer, 16 clients x 500 0.25 ms.
BATCH_CLIENTS = 4


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--wallets", type=int, default=1_000, help="funded wallets (default: 1000)")
    group.add_argument(
        "--batch-size",
        type=int,
        default=500,
        help="transfers per post_transfers call in the batch figure (default: 500)",
    )
    group.add_argument(
        "--batch-clients",
        type=int,
        default=BATCH_CLIENTS,
        help=f"concurrent clients posting batches (default: {BATCH_CLIENTS})",
    )
    group.add_argument(
        "--hot-shards",
        type=int,
        default=16,
        help="shards of the hot fee account (default: 16)",
    )
    group.add_argument(
        "--sqlite-threads",
        type=int,
        default=1,
        help="writer threads for the SQLite figure (default: 1; SQLite has one writer)",
    )
    group.add_argument(
        "--skip-vacuum",
        action="store_true",
        help="do not VACUUM ANALYZE the ledger database before each figure (to see what "
        "stale statistics do to ledger_apply's plans when autovacuum is off)",
    )
    group.add_argument(
        "--pgbench-scale", type=int, default=10, help="pgbench -i scale factor (default: 10)"
    )


# --- Accounts -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accounts:
    funding: int
    wallets: tuple[int, ...]
    fee_sharded: int
    fee_unsharded: int


def open_accounts(engine: Engine, wallets: int, hot_shards: int) -> Accounts:
    """Open the benchmark's accounts and fund every wallet, a batch of transfers per commit."""
    with Session(engine) as session:
        funding = ledger.open_account(
            session, kind=AccountKind.FUNDING, name="bench funding", owner_ref="bench"
        ).id
        wallet_ids = tuple(
            ledger.open_account(
                session,
                kind=AccountKind.CITIZEN_WALLET,
                name=f"bench wallet {n}",
                owner_ref=f"bench:{n}",
            ).id
            for n in range(wallets)
        )
        fee_sharded = ledger.open_account(
            session,
            kind=AccountKind.FEE_REVENUE,
            name="bench fees (sharded)",
            owner_ref="bench:sharded",
            shard_count=hot_shards,
        ).id
        fee_unsharded = ledger.open_account(
            session,
            kind=AccountKind.FEE_REVENUE,
            name="bench fees (one row)",
            owner_ref="bench:unsharded",
        ).id
        session.commit()
        for start in range(0, len(wallet_ids), FUNDING_BATCH):
            ledger.post_transfers(
                session,
                [
                    Post(
                        key=f"bench:funding:{wallet}",
                        debit_account_id=funding,
                        credit_account_id=wallet,
                        amount=FUNDING_PER_WALLET_VND,
                        code="bench_funding",
                    )
                    for wallet in wallet_ids[start : start + FUNDING_BATCH]
                ],
            )
            session.commit()
    return Accounts(funding, wallet_ids, fee_sharded, fee_unsharded)


# --- Clients ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientConfig:
    url: str
    accounts: Accounts
    run_tag: str


class LedgerClient:
    """One client: its own engine with a single connection, one Session, its own key sequence."""

    def __init__(self, index: int, config: ClientConfig) -> None:
        self.index = index
        self.accounts = config.accounts
        # One connection per client, checked out for every transaction: no pre-ping (it would
        # add a round trip per transfer; a benchmark's connections do not go stale).
        self.engine = make_engine(config.url, pool_size=1, max_overflow=0, pool_pre_ping=False)
        self.session = Session(self.engine, expire_on_commit=False)
        self.random = random.Random(f"{config.run_tag}:{index}")  # load, not secrets
        self._keys = itertools.count(1)
        self._key_prefix = f"bench:{config.run_tag}:{index}"

    def key(self, figure: str) -> str:
        return f"{self._key_prefix}:{figure}:{next(self._keys)}"

    def pair(self, wallets: Sequence[int]) -> tuple[int, int]:
        debit, credit = self.random.sample(wallets, 2)
        return debit, credit

    def amount(self) -> int:
        return self.random.randint(1, PAYMENT_MAX_VND)

    def shard_slot(self) -> int:
        """The connection's slot, which picks its shard of a hot account (claimed if new)."""
        slot = self.session.scalar(text("SELECT ledger_shard_slot()"))
        self.session.commit()
        return int(slot or 0)

    def close(self) -> None:
        self.session.close()
        self.engine.dispose()


def _client_setup(index: int, config: ClientConfig) -> LedgerClient:
    client = LedgerClient(index, config)
    # Connect now, so that connection set-up is never inside a measured window.
    client.session.execute(text("SELECT 1"))
    client.session.rollback()
    return client


def _committed(
    client: LedgerClient, requests: Sequence[ledger.TransferRequest], in_session: bool = False
) -> None:
    """One commit: `commit_transfers` (one round trip), or `post_transfers` in the client's
    Session and its commit (BEGIN, the call, COMMIT), as the product's flows post."""
    if not in_session:
        ledger.commit_transfers(client.engine, requests)
        return
    try:
        ledger.post_transfers(client.session, requests)
        client.session.commit()
    except BaseException:
        client.session.rollback()
        raise


# Operation factories: (client, parameters) -> the operation that client runs back to back.
# They are module-level functions so that they can be sent to the client processes by name.


def single_transfer(client: LedgerClient, in_session: bool) -> common.Operation:
    wallets = client.accounts.wallets

    def operation() -> int:
        debit, credit = client.pair(wallets)
        payment = Post(client.key("single"), debit, credit, client.amount(), code="bench_payment")
        _committed(client, [payment], in_session)
        return 1

    return operation


@dataclass(frozen=True, slots=True)
class BatchParams:
    size: int
    clients: int


def batch_of_transfers(client: LedgerClient, params: BatchParams) -> common.Operation | None:
    if client.index >= params.clients:
        return None
    # Each batch client pays among its own slice of the wallets: a batch locks hundreds of balance
    # rows, and batches drawn from one shared pool would mostly queue behind each other's locks.
    wallets = client.accounts.wallets[client.index :: params.clients]
    if len(wallets) < 2:
        raise BenchmarkError("too few wallets per batch client")

    def operation() -> int:
        requests = []
        for _ in range(params.size):
            debit, credit = client.pair(wallets)
            requests.append(
                Post(client.key("batch"), debit, credit, client.amount(), code="bench_payment")
            )
        _committed(client, requests)
        return params.size

    return operation


def reserve_then_post(client: LedgerClient, _params: object) -> common.Operation:
    wallets = client.accounts.wallets

    def operation() -> int:
        debit, credit = client.pair(wallets)
        reserved = ledger.commit_transfer(
            client.engine,
            Reserve(
                client.key("reserve"),
                debit,
                credit,
                client.amount(),
                code="bench_withdrawal",
                timeout_s=RESERVATION_TIMEOUT_S,
            ),
        )
        ledger.commit_transfer(
            client.engine, PostPending(client.key("post"), pending_id=reserved.id)
        )
        return 1

    return operation


@dataclass(frozen=True, slots=True)
class HotParams:
    sharded: bool
    in_session: bool = False
    # The fee as a second, linked transfer instead of a fee leg of the payment.
    linked: bool = False


def payment_with_fee(client: LedgerClient, params: HotParams) -> common.Operation:
    accounts = client.accounts
    wallets = accounts.wallets
    fee_account = accounts.fee_sharded if params.sharded else accounts.fee_unsharded

    def operation() -> int:
        debit, credit = client.pair(wallets)
        payment = Post(client.key("pay"), debit, credit, client.amount(), code="bench_payment")
        if params.linked:
            fee = Post(client.key("fee"), debit, fee_account, FEE_VND, code="bench_fee")
            requests = [payment, fee]
        else:
            requests = [replace(payment, fee_account_id=fee_account, fee_amount=FEE_VND)]
        _committed(client, requests, params.in_session)
        return 1

    return operation


def shard_slot(client: LedgerClient, _params: object) -> int:
    return client.shard_slot()


# --- Figures ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Round:
    """One round of a figure: its rate, and the CPU one operation cost the server and clients."""

    rate: float
    server_ms: float
    clients_ms: float

    @classmethod
    def of(cls, rate: float, load: common.Load, ops: int) -> Round:
        server_ms, clients_ms, _other_ms = load.ms_per_op(ops)
        return cls(rate, server_ms, clients_ms)


@dataclass(slots=True)
class Figure:
    """One figure, measured once per round; the best round is reported, with what one of its
    operations cost in CPU (`cpu_ms_per_op`), the server's and the clients'."""

    name: str
    unit: str
    measure: Callable[[str], Round]
    rounds: list[Round] = field(default_factory=list)

    @property
    def best_round(self) -> Round:
        return max(self.rounds, key=lambda r: r.rate)

    @property
    def best(self) -> float:
        return self.best_round.rate

    def emit(self, baseline: Figure | None = None, **extra: Any) -> None:
        if len(self.rounds) > 1:
            extra["rounds"] = [round(r.rate, 1) for r in self.rounds]
        best = self.best_round
        extra["cpu_ms_per_op"] = {
            "server": round(best.server_ms, 3),
            "clients": round(best.clients_ms, 3),
        }
        common.emit(
            self.name,
            self.best,
            self.unit,
            baseline=None if baseline is None else baseline.best,
            **extra,
        )


class LedgerBenchmark:
    """The scratch databases, the client processes and the figures measured with them."""

    def __init__(self, args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
        self.args = args
        self.pgbench = common.ensure_pgbench()
        self.pgbench_url = stack.enter_context(common.scratch_database("pgbench"))
        self.url = stack.enter_context(common.scratch_database("ledger"))
        directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="softatm_bench_"))
        self.sqlite_url = f"sqlite:///{Path(directory) / 'ledger.sqlite3'}"

        log(f"pgbench: initialising at scale {args.pgbench_scale}")
        common.run_pgbench(
            self.pgbench, self.pgbench_url, ["-i", "-q", "-s", str(args.pgbench_scale)]
        )

        self.engine = make_engine(self.url)
        stack.callback(self.engine.dispose)
        self.sqlite_engine = make_engine(self.sqlite_url)
        stack.callback(self.sqlite_engine.dispose)
        accounts = {}
        for label, url, engine in (
            ("PostgreSQL", self.url, self.engine),
            ("SQLite", self.sqlite_url, self.sqlite_engine),
        ):
            log(f"{label}: migrating, opening and funding {args.wallets} wallets")
            upgrade(url)
            accounts[label] = open_accounts(engine, args.wallets, args.hot_shards)

        processes = common.client_processes(args)
        log(f"starting {args.clients} clients in {processes} processes")
        config = ClientConfig(self.url, accounts["PostgreSQL"], run_tag=str(os.getpid()))
        self.pool = stack.enter_context(
            ClientPool(args.clients, _client_setup, config, processes=processes)
        )
        shards = {slot % args.hot_shards for slot in self.pool.call(shard_slot, None)}
        log(
            f"hot account: the {args.clients} clients write {len(shards)} of its "
            f"{args.hot_shards} shards (ledger_apply picks the connection's slot % shard_count)"
        )

        sqlite_config = ClientConfig(self.sqlite_url, accounts["SQLite"], f"{os.getpid()}-sqlite")
        self.sqlite_clients = [_client_setup(i, sqlite_config) for i in range(args.sqlite_threads)]
        for client in self.sqlite_clients:
            stack.callback(client.close)

        self.batch_clients = min(args.batch_clients, args.clients)
        self.pgbench_tps = Figure("ledger_pgbench_tps", "tps", self.measure_pgbench)
        self.single = Figure("ledger_single_tps", "tps", self.on_pool(single_transfer, False))
        self.single_in_session = Figure(
            "ledger_single_in_session_tps", "tps", self.on_pool(single_transfer, True)
        )
        self.batch = Figure(
            "ledger_batch_tps",
            "tps",
            self.on_pool(batch_of_transfers, BatchParams(args.batch_size, self.batch_clients)),
        )
        self.reserve_post = Figure(
            "ledger_reserve_post_pairs_per_s", "pairs/s", self.on_pool(reserve_then_post, None)
        )
        self.hot = Figure(
            "ledger_hot_account_tps", "tps", self.on_pool(payment_with_fee, HotParams(True))
        )
        self.hot_in_session = Figure(
            "ledger_hot_account_in_session_tps",
            "tps",
            self.on_pool(payment_with_fee, HotParams(True, in_session=True)),
        )
        self.hot_linked = Figure(
            "ledger_hot_account_linked_tps",
            "tps",
            self.on_pool(payment_with_fee, HotParams(True, linked=True)),
        )
        self.hot_unsharded = Figure(
            "ledger_hot_account_unsharded_tps",
            "tps",
            self.on_pool(payment_with_fee, HotParams(False)),
        )
        self.sqlite = Figure("ledger_sqlite_single_tps", "tps", self.measure_sqlite)

    @property
    def figures(self) -> list[Figure]:
        return [
            # Each figure right after the one its ratio is to, where it can be: the ledger's
            # tables grow through a run (the batches most), and a figure measured on a table
            # several times larger than its baseline's is compared with less than itself.
            self.pgbench_tps,
            self.single,
            self.hot,
            self.hot_linked,
            self.hot_unsharded,
            self.single_in_session,
            self.hot_in_session,
            self.reserve_post,
            self.batch,
            self.sqlite,
        ]

    def measure_pgbench(self, label: str) -> Round:
        args = self.args
        # -N: simple-update (no contended branch/teller rows); two pgbench threads, as in the brief.
        options = ["-N", "-c", str(args.clients), "-j", str(min(2, args.clients))]
        common.wait_for_quiet(args.quiet_wait_s)
        common.checkpoint()
        if args.warmup_s > 0:
            common.run_pgbench(
                self.pgbench, self.pgbench_url, [*options, "-T", str(math.ceil(args.warmup_s))]
            )
        seconds = max(1, math.ceil(args.duration_s))  # pgbench -T counts whole seconds
        run = common.run_pgbench(
            self.pgbench, self.pgbench_url, [*options, "-T", str(seconds)], observe_s=seconds
        )
        if math.isnan(run.tps):
            raise BenchmarkError(f"no tps in pgbench's output:\n{run.output}")
        assert run.load is not None
        ops = round(run.tps * run.load.wall_s)
        log(f"{label}: {run.tps:.0f} tps; {run.load.describe(ops)}")
        return Round.of(run.tps, run.load, ops)

    def on_pool(self, factory: common.OperationFactory, params: Any) -> Callable[[str], Round]:
        def measure(label: str) -> Round:
            args = self.args
            common.wait_for_quiet(args.quiet_wait_s, self.pool.pids)
            if not args.skip_vacuum:
                common.vacuum_analyze(self.url)
            common.checkpoint()
            window = Window.starting_soon(args.warmup_s, args.duration_s)
            observed = common.observe(
                window, lambda: self.pool.run(factory, params, window), self.pool.pids
            )
            log(f"{label}: {observed.describe()}")
            return Round.of(observed.rate, observed.load, observed.measured.ops)

        return measure

    def measure_sqlite(self, label: str) -> Round:
        args = self.args
        common.wait_for_quiet(args.quiet_wait_s)
        operations = [single_transfer(client, False) for client in self.sqlite_clients]
        window = Window.starting_soon(args.warmup_s, args.duration_s)
        observed = common.observe(window, lambda: common.run_threads(operations, window))
        log(f"{label} ({args.sqlite_threads} thread(s)): {observed.describe()}")
        return Round.of(observed.rate, observed.load, observed.measured.ops)

    def measure_all(self) -> None:
        rounds = self.args.rounds
        for number in range(1, rounds + 1):
            for figure in self.figures:
                label = f"round {number}/{rounds} {figure.name}"
                log(f"{label}: {self.args.warmup_s:g} s warm-up, {self.args.duration_s:g} s")
                figure.rounds.append(figure.measure(label))

    def emit_all(self) -> None:
        args = self.args
        pgbench = self.pgbench_tps
        pgbench.emit(clients=args.clients)
        self.single.emit(pgbench, clients=args.clients)
        self.single_in_session.emit(pgbench, clients=args.clients)
        self.batch.emit(
            self.single,
            ratio_to_pgbench=round(self.batch.best / pgbench.best, 3),
            batch_size=args.batch_size,
            clients=self.batch_clients,
        )
        self.reserve_post.emit(pgbench, clients=args.clients)
        self.hot.emit(self.single, shards=args.hot_shards, clients=args.clients)
        self.hot_in_session.emit(
            self.single_in_session, shards=args.hot_shards, clients=args.clients
        )
        self.hot_linked.emit(self.single, shards=args.hot_shards, clients=args.clients)
        self.hot_unsharded.emit(self.single, shards=1, clients=args.clients)
        self.sqlite.emit(pgbench, threads=args.sqlite_threads)

    def verify_all(self) -> None:
        verify(self.engine, "PostgreSQL")
        verify(self.sqlite_engine, "SQLite")


def verify(engine: Engine, label: str) -> None:
    with Session(engine) as session:
        transfers = session.scalar(select(func.count()).select_from(Transfer)) or 0
        report = ledger.verify_ledger(session)
    log(
        f"verify_ledger ({label}): ok={report.ok}, {report.accounts_checked} accounts, "
        f"{report.chains_checked} chains, {report.transfers_checked} of {transfers} transfers"
    )
    if not report.ok:
        for problem in report.problems[:PROBLEMS_SHOWN_MAX]:
            log(f"  {problem}")
        raise BenchmarkError(
            f"verify_ledger found {report.problems_total} problems in the {label} ledger"
        )


def _check(args: argparse.Namespace) -> None:
    counts = {
        "--clients": args.clients,
        "--batch-clients": args.batch_clients,
        "--processes": args.processes or 1,
        "--rounds": args.rounds,
        "--sqlite-threads": args.sqlite_threads,
    }
    for option, value in counts.items():
        if value < 1:
            raise BenchmarkError(f"{option} must be at least 1")
    if not 1 <= args.batch_size <= ledger.posting.BATCH_SIZE_MAX:
        raise BenchmarkError(f"--batch-size must be 1 to {ledger.posting.BATCH_SIZE_MAX}")
    if args.duration_s <= 0 or args.warmup_s < 0:
        raise BenchmarkError("--duration-s must be positive and --warmup-s not negative")
    if args.wallets < 2 * min(args.batch_clients, args.clients):
        raise BenchmarkError("--wallets must give every batch client at least two wallets")


def run(args: argparse.Namespace) -> None:
    _check(args)
    with contextlib.ExitStack() as stack:
        benchmark = LedgerBenchmark(args, stack)
        benchmark.measure_all()
        benchmark.emit_all()
        benchmark.verify_all()
