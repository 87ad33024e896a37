"""Run Soft ATM's periodic commands where there is no systemd: the scheduler service of
deploy/compose.yaml (``python deploy/scheduler.py``).

Each job runs its ``softatm`` command in a fresh process, in a thread of its own, so that a long
ledger verification never delays the sweep. A job never overlaps itself; a failure is logged
and the job runs again at its next time. The commands are the ones the systemd timers run
(deploy/systemd/), with the same times: every minute, or daily at a time of Vietnam's day.
SIGTERM or SIGINT stops the scheduler, and the running commands with it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from zoneinfo import ZoneInfo

LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
REPORTS_DIR = "/var/lib/softatm/reports"
# A command still running after its stop signal this long is killed.
STOP_GRACE_S = 20

logger = logging.getLogger("softatm.scheduler")


@dataclass(frozen=True)
class Job:
    name: str
    command: Sequence[str]
    # Either every this many seconds, or daily at this local time (Asia/Ho_Chi_Minh).
    every_s: int | None = None
    daily_at: dt.time | None = None
    timeout_s: int = 3600

    def next_run(self, after: dt.datetime) -> dt.datetime:
        """The first time after ``after`` (aware) at which the job is due."""
        if self.every_s is not None:
            return after + dt.timedelta(seconds=self.every_s)
        assert self.daily_at is not None
        local = after.astimezone(LOCAL_ZONE)
        due = dt.datetime.combine(local.date(), self.daily_at, tzinfo=LOCAL_ZONE)
        if due <= local:
            due += dt.timedelta(days=1)
        return due.astimezone(dt.UTC)


JOBS = (
    Job("sweep", ("softatm", "ledger", "sweep"), every_s=60, timeout_s=50),
    Job("adoption-rollup", ("softatm", "adoption", "rollup"), every_s=60, timeout_s=50),
    Job("verify", ("softatm", "ledger", "verify"), daily_at=dt.time(2, 30), timeout_s=2 * 3600),
    Job(
        "drawer-report",
        ("softatm", "ops", "drawer-report", "--date", "yesterday", "--output", REPORTS_DIR),
        daily_at=dt.time(0, 30),
        timeout_s=30 * 60,
    ),
)


class Scheduler:
    def __init__(self, jobs: Sequence[Job]) -> None:
        self.jobs = jobs
        self.stopping = threading.Event()
        self._running: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def run_forever(self) -> None:
        threads = [
            threading.Thread(target=self._loop, args=(job,), name=job.name, daemon=True)
            for job in self.jobs
        ]
        for thread in threads:
            thread.start()
        self.stopping.wait()
        self._stop_children()
        for thread in threads:
            thread.join(timeout=STOP_GRACE_S)

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        _log("stopping", signal=signal.Signals(signum).name)
        self.stopping.set()

    def _loop(self, job: Job) -> None:
        due = job.next_run(dt.datetime.now(dt.UTC))
        while not self.stopping.is_set():
            wait_s = (due - dt.datetime.now(dt.UTC)).total_seconds()
            if wait_s > 0 and self.stopping.wait(wait_s):
                return
            self.run_once(job)
            # From the time it was due, not from when it ended: a one-minute job stays on the
            # minute; a run that overran its slot skips the slots it missed.
            due = job.next_run(max(due, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))

    def run_once(self, job: Job) -> int | None:
        started = dt.datetime.now(dt.UTC)
        process = subprocess.Popen(job.command)  # noqa: S603 — fixed commands, no shell
        with self._lock:
            self._running[job.name] = process
        try:
            code: int | None = process.wait(timeout=job.timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = None
        finally:
            with self._lock:
                self._running.pop(job.name, None)
        duration_ms = round((dt.datetime.now(dt.UTC) - started).total_seconds() * 1000)
        if code is None:
            _log("timed out", job=job.name, timeout_s=job.timeout_s, level=logging.ERROR)
        elif code != 0 and not self.stopping.is_set():
            _log("failed", job=job.name, exit_code=code, level=logging.ERROR)
        else:
            _log("done", job=job.name, exit_code=code, duration_ms=duration_ms)
        return code

    def _stop_children(self) -> None:
        with self._lock:
            running = list(self._running.values())
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()


def _log(event: str, level: int = logging.INFO, **fields: object) -> None:
    record = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "logger": logger.name,
        "event": event,
        **fields,
    }
    logger.log(level, json.dumps(record, ensure_ascii=False))


def main() -> None:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    scheduler = Scheduler(JOBS)
    signal.signal(signal.SIGTERM, scheduler.stop)
    signal.signal(signal.SIGINT, scheduler.stop)
    _log("started", jobs=[job.name for job in JOBS])
    scheduler.run_forever()


if __name__ == "__main__":
    main()
