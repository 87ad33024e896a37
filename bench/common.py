"""Helpers shared by the benchmarks: output, scratch databases, pgbench, clients, CPU probes.

Figures go to stdout as JSON lines (`emit`); everything else goes to stderr (`log`).

Load comes from *clients*, each with its own connection, spread as threads over a few spawned
processes (`ClientPool`, `client_processes`). The processes are started once and reused for every
figure of a benchmark, so that start-up and connections are never inside a measured window.

A figure is measured over a *window*: all clients start at the same instant, run a warm-up that
is not counted, then count every operation that completes inside the window. The rate is units
done inside the window divided by its length, so every figure is measured, never derived.

Each window also records where the CPU went — the server's processes, the clients, and other
work (kernel threads, other people's jobs on a shared machine) — so that a figure can be explained
(`Load`), and a window waits for other work to leave the CPUs first (`wait_for_quiet`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from ledger.database import make_engine

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
# The databases this run created: their backends are "server" in the CPU accounting, while
# backends of other databases (other people's tests on a shared server) are "other".
OUR_DATABASES: set[str] = set()
# Time for the start message to reach every client before the window opens.
START_DELAY_S = 0.5
CLIENT_STOP_TIMEOUT_S = 10.0


class BenchmarkError(Exception):
    """A benchmark could not run, or produced a figure that cannot be trusted."""


# --- Output --------------------------------------------------------------------------------------


def log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[bench {stamp}] {message}", file=sys.stderr, flush=True)


def emit(
    name: str, value: float, unit: str, *, baseline: float | None = None, **extra: Any
) -> None:
    """Print one figure as a JSON line; with a baseline, also the ratio value / baseline."""
    record: dict[str, Any] = {"name": name, "value": round(value, 1), "unit": unit}
    if baseline is not None:
        record["baseline"] = round(baseline, 1)
        record["ratio"] = round(value / baseline, 3) if baseline else None
    record.update(extra)
    print(json.dumps(record), flush=True)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration-s",
        type=float,
        default=10.0,
        help="measured seconds per figure (default: 10)",
    )
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=2.0,
        help="uncounted seconds of load before each measured window (default: 2)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measure every figure this many times, round-robin, and report the best; "
        "this machine may be shared and a round can lose CPUs to other work (default: 3)",
    )
    parser.add_argument(
        "--quiet-wait-s",
        type=float,
        default=15.0,
        help="before each window, wait up to this long for other work to leave the CPUs "
        "(default: 15)",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=16,
        help="concurrent clients, each with its own connection and session (default: 16)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="client processes; the clients are spread over them as threads (default: one per "
        "two CPUs, at least one — see client_processes)",
    )


def client_processes(args: argparse.Namespace) -> int:
    """How many processes run the `--clients` clients (as threads), unless `--processes` says.

    The clients share the machine with the server. One Python process uses at most one CPU
    (the GIL), so one process per two CPUs leaves the other half to PostgreSQL. Measured on the
    2-CPU development machine with 16 clients: one process of 16 threads posted 830-1010 single
    transfers/s at 0.55-0.69 ms of client CPU each, 16 processes 620-690/s at 1.5-1.6 ms each —
    sixteen processes spend the CPUs switching between themselves and the server's backends.
    """
    if args.processes:
        return int(min(args.clients, args.processes))
    return max(1, min(int(args.clients), (os.cpu_count() or 2) // 2))


# --- PostgreSQL: the admin connection, scratch databases, pgbench -------------------------------


def admin_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_ADMIN_URL)


def redacted(url: str | URL) -> str:
    return make_url(url).render_as_string(hide_password=True)


@contextlib.contextmanager
def scratch_database(tag: str) -> Iterator[str]:
    """Create `softatm_bench_<pid>_<tag>`, yield its URL, and drop it afterwards, whatever happens.

    WITH (FORCE) ends connections a crashed client may have left behind, which would otherwise
    make the DROP fail and leak the database.
    """
    name = f"softatm_bench_{os.getpid()}_{tag}"
    admin = make_engine(admin_url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        admin.dispose()
        raise BenchmarkError(
            f"cannot create a database at {redacted(admin_url())}: {error}"
        ) from error
    log(f"created database {name}")
    OUR_DATABASES.add(name)
    try:
        yield make_url(admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        log(f"dropped database {name}")


def vacuum_analyze(url: str) -> None:
    """VACUUM ANALYZE a database, as autovacuum would, and as pgbench does before each run.

    Autovacuum may be off (it is on the development server). Without statistics the planner
    sizes the ledger's tables as they were when empty, and ledger_apply's cached plans keep
    that choice as the tables grow; see `--skip-vacuum`.
    """
    engine = make_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()


def checkpoint() -> None:
    """Flush dirty pages now, so that a checkpoint does not land inside the next window."""
    admin = make_engine(admin_url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            connection.execute(text("CHECKPOINT"))
    except Exception as error:  # needs superuser; figures are just noisier without
        log(f"CHECKPOINT refused ({str(error).splitlines()[0]}); figures may be noisier")
    finally:
        admin.dispose()


def ensure_pgbench() -> str:
    """The path of pgbench; installs postgresql-client when missing and running as root."""
    found = shutil.which("pgbench")
    if found:
        return found
    if os.geteuid() != 0:
        raise BenchmarkError(
            "pgbench is not installed and this is not root: install it first "
            "(Debian/Ubuntu: sudo apt-get install -y postgresql-client)"
        )
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise BenchmarkError("pgbench is not installed and there is no apt-get to install it")
    log("pgbench is missing: installing postgresql-client")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt_get, "install", "-y", "--no-install-recommends", "postgresql-client"]
    if subprocess.run(install, stdout=sys.stderr, env=env, check=False).returncode != 0:
        # A fresh container has no package lists yet.
        subprocess.run([apt_get, "update"], stdout=sys.stderr, env=env, check=True)
        subprocess.run(install, stdout=sys.stderr, env=env, check=True)
    found = shutil.which("pgbench")
    if found is None:
        raise BenchmarkError("postgresql-client was installed but pgbench is still not found")
    return found


_PGBENCH_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class PgbenchRun:
    tps: float
    output: str
    load: Load | None = None


def run_pgbench(
    pgbench: str, url: str, options: Sequence[str], *, observe_s: float | None = None
) -> PgbenchRun:
    """Run pgbench on the database of `url` (connection settings go by libpq's variables).

    With `observe_s` (the run's -T), the CPU load is also sampled over the run's middle, while
    pgbench's connections are alive: their backends' CPU is only visible until they exit.
    """
    parsed = make_url(url)
    env = dict(os.environ)
    for variable, value in (
        ("PGHOST", parsed.host),
        ("PGPORT", parsed.port),
        ("PGUSER", parsed.username),
        ("PGPASSWORD", parsed.password),
    ):
        if value is not None:
            env[variable] = str(value)
    process = subprocess.Popen(
        [pgbench, *options, str(parsed.database)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    load = None
    try:
        if observe_s is not None:
            # Without -P, pgbench writes only at its end, so its pipes cannot fill meanwhile.
            margin = min(1.0, observe_s / 4)
            time.sleep(margin)
            before = sample()
            time.sleep(observe_s - 2 * margin)
            load = Load.between(before, sample(), [process.pid])
        stdout, stderr = process.communicate()
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode != 0:
        raise BenchmarkError(f"pgbench {' '.join(options)} failed:\n{stdout}{stderr}")
    match = _PGBENCH_TPS.search(stdout)
    return PgbenchRun(float(match.group(1)) if match else math.nan, stdout, load)


# --- Where the time goes: CPU by process group, idle time, WAL counters -------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# Other work above this many CPUs (when idle) delays a window: this machine may be shared.
OTHER_LOAD_LIMIT_CPUS = 0.15
# Under load "other" also holds the kernel's share of the benchmark's own work (fsync, loopback
# networking), so a measured window is only flagged above a higher level.
OTHER_LOAD_WARNING_CPUS = 0.25
QUIET_PROBE_S = 1.0
SERVER_COMMAND = "postgres"


@dataclass(frozen=True, slots=True)
class ProcessCpu:
    command: str
    cpu_s: float
    # For a PostgreSQL backend, the database it serves (from its process title).
    database: str | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    # All CPUs together, from /proc/stat; busy includes steal (another VM on the host).
    busy_s: float
    idle_s: float
    iowait_s: float
    processes: dict[int, ProcessCpu]
    wal_syncs: int
    wal_bytes: int


def _machine_cpu() -> tuple[float, float, float]:
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return (math.nan, math.nan, math.nan)
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = user + nice + system + irq + softirq + steal
    return (busy / _CLOCK_TICKS, idle / _CLOCK_TICKS, iowait / _CLOCK_TICKS)


def _processes() -> dict[int, ProcessCpu]:
    processes = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            content = stat.read_text()
        except OSError:
            continue  # the process ended while we looked
        comm_end = content.rfind(")")
        command = content[content.find("(") + 1 : comm_end]
        # Fields 14 and 15 of /proc/PID/stat: utime, stime.
        utime, stime = (int(v) for v in content[comm_end + 2 :].split()[11:13])
        processes[int(stat.parent.name)] = ProcessCpu(
            command,
            (utime + stime) / _CLOCK_TICKS,
            _backend_database(stat.parent) if command == SERVER_COMMAND else None,
        )
    return processes


def _backend_database(proc: Path) -> str | None:
    """The database in a backend's title `postgres: 15/main: USER DATABASE HOST(PORT) STATE`."""
    try:
        title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    words = title.split()
    # Auxiliary processes (checkpointer, walwriter, ...) name no client address.
    if len(words) >= 5 and words[0] == "postgres:" and ("(" in words[4] or words[4] == "[local]"):
        return words[3]
    return None


def sample(*, with_wal: bool = True) -> Sample:
    wal_syncs = wal_bytes = -1
    if with_wal:
        admin = make_engine(admin_url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with admin.connect() as connection:
                row = connection.execute(text("SELECT wal_sync, wal_bytes FROM pg_stat_wal")).one()
                wal_syncs, wal_bytes = int(row[0]), int(row[1])
        except Exception:  # noqa: S110 — pg_stat_wal is diagnostics only (PostgreSQL >= 14)
            pass
        finally:
            admin.dispose()
    busy, idle, iowait = _machine_cpu()
    return Sample(time.monotonic(), busy, idle, iowait, _processes(), wal_syncs, wal_bytes)


def _spent(before: Sample, after: Sample, pid: int) -> float:
    now = after.processes[pid]
    then = before.processes.get(pid)
    # Started inside the window, or a reused pid. (A kernel worker changes its name with its
    # work, so a changed name alone does not mean a new process.)
    if then is None or then.cpu_s > now.cpu_s:
        return now.cpu_s
    return now.cpu_s - then.cpu_s


@dataclass(frozen=True, slots=True)
class Load:
    """CPU seconds spent during a window, by who spent them.

    Server: PostgreSQL's own processes (WAL writer, checkpointer, ...) and the backends of this
    run's databases. Clients: the benchmark's processes (and pgbench). Other: the rest of the
    machine's busy time — kernel threads (fsync, network), other people's work and their
    backends, steal. Processes that end inside the window lose their last stretch of CPU to
    "other", which is why pgbench is observed while it runs.
    """

    wall_s: float
    server_s: float
    client_s: float
    other_s: float
    other_top: list[tuple[str, float]]
    idle_s: float
    iowait_s: float
    wal_syncs: int
    wal_bytes: int

    @classmethod
    def between(cls, before: Sample, after: Sample, client_pids: Collection[int]) -> Load:
        ours = {*client_pids, os.getpid()}
        server = client = 0.0
        others: dict[str, float] = {}
        for pid, process in after.processes.items():
            spent = _spent(before, after, pid)
            if process.command == SERVER_COMMAND and process.database in (None, *OUR_DATABASES):
                server += spent
            elif pid in ours:
                client += spent
            else:
                others[process.command] = others.get(process.command, 0.0) + spent
        busy = after.busy_s - before.busy_s
        return cls(
            wall_s=after.at - before.at,
            server_s=server,
            client_s=client,
            other_s=max(0.0, busy - server - client),
            other_top=sorted(others.items(), key=lambda item: -item[1])[:3],
            idle_s=after.idle_s - before.idle_s,
            iowait_s=after.iowait_s - before.iowait_s,
            wal_syncs=after.wal_syncs - before.wal_syncs,
            wal_bytes=after.wal_bytes - before.wal_bytes,
        )

    @property
    def other_cpus(self) -> float:
        return self.other_s / self.wall_s

    def culprits(self) -> str:
        return ", ".join(f"{name} {cpu / self.wall_s:.2f}" for name, cpu in self.other_top)

    def ms_per_op(self, ops: int) -> tuple[float, float, float]:
        """CPU milliseconds per operation: the server's, the clients' and the rest's."""
        ops = max(ops, 1)
        return (self.server_s / ops * 1e3, self.client_s / ops * 1e3, self.other_s / ops * 1e3)

    def describe(self, ops: int) -> str:
        """CPU per operation on each side, idle time, fsyncs per operation, other load."""
        ncpu = os.cpu_count() or 1
        server_ms, clients_ms, other_ms = self.ms_per_op(ops)
        ops = max(ops, 1)
        described = (
            f"CPU per op: server {server_ms:.3f} ms, "
            f"clients {clients_ms:.3f} ms, "
            f"other {other_ms:.3f} ms; "
            f"idle {self.idle_s / (self.wall_s * ncpu):.0%}, "
            f"iowait {self.iowait_s / (self.wall_s * ncpu):.0%} of {ncpu} CPUs; "
            f"WAL fsyncs/op {self.wal_syncs / ops:.2f}, {self.wal_bytes / ops / 1024:.2f} kB/op"
        )
        if self.other_cpus > OTHER_LOAD_WARNING_CPUS:
            described += (
                f"; WARNING: {self.other_cpus:.2f} CPUs went to other work "
                f"(top processes: {self.culprits()}), this window is noisy"
            )
        return described


def wait_for_quiet(limit_s: float, client_pids: Collection[int] = ()) -> None:
    """Wait (at most `limit_s`) until other work leaves the CPUs to the benchmark.

    This machine may be shared (other people's test runs): a window measured while something
    else takes a CPU measures that, not the ledger.
    """
    deadline = time.monotonic() + limit_s
    waited = False
    while True:
        before = sample(with_wal=False)
        time.sleep(QUIET_PROBE_S)
        load = Load.between(before, sample(with_wal=False), client_pids)
        if load.other_cpus <= OTHER_LOAD_LIMIT_CPUS:
            if waited:
                log("the machine is quiet again")
            return
        if time.monotonic() >= deadline:
            log(
                f"still {load.other_cpus:.2f} CPUs of other work after {limit_s:g} s "
                f"({load.culprits()}); measuring anyway"
            )
            return
        if not waited:
            log(
                f"waiting for other work to leave the CPUs: {load.other_cpus:.2f} CPUs "
                f"({load.culprits()})"
            )
            waited = True


# --- Client processes and measured windows ------------------------------------------------------

# An operation does some work and returns how many units (transfers, pairs) it completed.
Operation = Callable[[], int]
# (client state, figure parameters) -> that client's operation, or None to sit the figure out.
OperationFactory = Callable[[Any, Any], Operation | None]
# (client index, set-up argument) -> client state (e.g. an engine, a session, a random generator).
ClientSetup = Callable[[int, Any], Any]


@dataclass(frozen=True, slots=True)
class Window:
    """Absolute `time.monotonic()` instants; CLOCK_MONOTONIC is system-wide on Linux."""

    start: float
    measure_from: float
    stop: float

    @property
    def length_s(self) -> float:
        return self.stop - self.measure_from

    @classmethod
    def starting_soon(cls, warmup_s: float, duration_s: float) -> Window:
        start = time.monotonic() + START_DELAY_S
        return cls(start, start + warmup_s, start + warmup_s + duration_s)


@dataclass(slots=True)
class ClientResult:
    units: int = 0
    ops: int = 0
    latencies_s: list[float] = field(default_factory=list)


def run_window(operation: Operation | None, window: Window) -> ClientResult:
    """Run `operation` back to back from `window.start`; count what completes in the window."""
    result = ClientResult()
    if operation is None:
        return result
    time.sleep(max(0.0, window.start - time.monotonic()))
    while True:
        began = time.monotonic()
        units = operation()
        ended = time.monotonic()
        if ended > window.stop:
            break
        if ended >= window.measure_from:
            result.units += units
            result.ops += 1
            result.latencies_s.append(ended - began)
    return result


def _client_main(
    connection: Connection, indices: list[int], setup: ClientSetup, argument: Any
) -> None:
    """A client process: set up its clients once, then answer messages until told to stop.

    A message is (function, params, window): with a window, each client runs the operation
    `function(state, params)` over it (one thread per client when the process has several);
    without one, each client answers `function(state, params)` once.
    """
    states: list[Any] = []
    try:
        states = [setup(index, argument) for index in indices]
        connection.send(("ok", None))
        while (message := connection.recv()) is not None:
            function, params, window = message
            try:
                if window is None:
                    answer: list[Any] = [function(state, params) for state in states]
                elif len(states) == 1:
                    answer = [run_window(function(states[0], params), window)]
                else:
                    answer = run_threads([function(state, params) for state in states], window)
                connection.send(("ok", answer))
            except Exception:  # the parent reports it and stops the benchmark
                connection.send(("error", traceback.format_exc()))
    except (EOFError, KeyboardInterrupt):
        pass  # the parent went away or was interrupted: just stop
    except Exception:  # a failed set-up is reported to the parent
        with contextlib.suppress(OSError):
            connection.send(("error", traceback.format_exc()))
    finally:
        try:
            for state in states:
                close = getattr(state, "close", None)
                if close is not None:
                    close()
        except Exception:
            traceback.print_exc()
        finally:
            # Skip the interpreter's teardown (spawned children run it in full): sixteen clients
            # tearing down SQLAlchemy at once take seconds of CPU on a small machine, and nothing
            # is left to clean up once the connections are closed.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)


class ClientPool:
    """`clients` clients in `processes` processes (default: one each), reused across figures.

    Client `index` is set up by `setup(index, argument)` in its process; several clients in one
    process run as threads, which share that process's GIL.
    """

    def __init__(
        self, clients: int, setup: ClientSetup, argument: Any, *, processes: int | None = None
    ) -> None:
        processes = min(clients, processes or clients)
        # spawn, not fork: a forked child would inherit the parent's engine and its sockets.
        context = multiprocessing.get_context("spawn")
        self._connections: list[Connection] = []
        self._processes: list[Any] = []
        for number in range(processes):
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=_client_main,
                args=(child_end, list(range(number, clients, processes)), setup, argument),
                name=f"bench-client-{number}",
                daemon=True,
            )
            process.start()
            child_end.close()
            self._connections.append(parent_end)
            self._processes.append(process)
        try:
            self._receive_all()
        except BaseException:
            self.close()
            raise

    def _receive_all(self) -> list[Any]:
        """Every process's answer (one entry per client), flattened in process order."""
        answers = []
        for number, connection in enumerate(self._connections):
            try:
                status, payload = connection.recv()
            except EOFError as error:
                raise BenchmarkError(f"client process {number} died") from error
            if status != "ok":
                raise BenchmarkError(f"client process {number} failed:\n{payload}")
            if payload is not None:
                answers.extend(payload)
        return answers

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

    def run(self, factory: OperationFactory, params: Any, window: Window) -> list[ClientResult]:
        """Every client runs its operation over the window; one result per client."""
        for connection in self._connections:
            connection.send((factory, params, window))
        results: list[ClientResult] = self._receive_all()
        return results

    def call(self, function: Callable[[Any, Any], Any], params: Any) -> list[Any]:
        """Every client answers `function(state, params)` once (set-up, probes)."""
        for connection in self._connections:
            connection.send((function, params, None))
        return self._receive_all()

    def close(self) -> None:
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.send(None)
        deadline = time.monotonic() + CLIENT_STOP_TIMEOUT_S
        for process in self._processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join()
        for connection in self._connections:
            connection.close()

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def run_threads(operations: Sequence[Operation], window: Window) -> list[ClientResult]:
    """Run each operation in a thread of its own over the window; one result per operation."""
    results: list[ClientResult] = [ClientResult() for _ in operations]
    errors: list[BaseException] = []

    def client(index: int) -> None:
        try:
            results[index] = run_window(operations[index], window)
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(operations))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def observe(
    window: Window, run: Callable[[], list[ClientResult]], client_pids: Collection[int] = ()
) -> Observed:
    """Call `run` (which drives the load) while sampling the counters at the window's edges."""
    samples: list[Sample] = []
    cancelled = threading.Event()

    def sampler() -> None:
        for instant in (window.measure_from, window.stop):
            if cancelled.wait(max(0.0, instant - time.monotonic())):
                return
            samples.append(sample())

    thread = threading.Thread(target=sampler, name="bench-sampler")
    thread.start()
    try:
        results = run()
    except BaseException:
        cancelled.set()  # a failed run must not wait for the window to end
        raise
    finally:
        thread.join()
    if len(samples) != 2:
        raise BenchmarkError("the load ended before the measured window did")
    return Observed(Measured.of(results, window), Load.between(samples[0], samples[1], client_pids))


@dataclass(frozen=True, slots=True)
class Measured:
    """What the clients did in a window: the rate, and how long each operation took."""

    rate: float
    ops: int
    units: int
    latency_p50_ms: float
    latency_p99_ms: float

    @classmethod
    def of(cls, results: Sequence[ClientResult], window: Window) -> Measured:
        latencies = sorted(x for r in results for x in r.latencies_s)
        if not latencies:
            raise BenchmarkError("no operation completed inside the measured window")
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        units = sum(r.units for r in results)
        return cls(
            rate=units / window.length_s,
            ops=len(latencies),
            units=units,
            latency_p50_ms=statistics.median(latencies) * 1e3,
            latency_p99_ms=p99 * 1e3,
        )


@dataclass(frozen=True, slots=True)
class Observed:
    """A window's figure with the CPU accounting that explains it."""

    measured: Measured
    load: Load

    @property
    def rate(self) -> float:
        return self.measured.rate

    def describe(self) -> str:
        m = self.measured
        return (
            f"{m.rate:.0f}/s ({m.units} units, {m.ops} ops); latency p50 {m.latency_p50_ms:.2f} ms,"
            f" p99 {m.latency_p99_ms:.2f} ms; " + self.load.describe(m.ops)
        )
