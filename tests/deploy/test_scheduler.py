"""deploy/scheduler.py, compose's stand-in for the systemd timers: when each job is due, how a
command's end is reported, and that its jobs are the timers' commands at the timers' times."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import sys
from types import ModuleType

import pytest

from tests.deploy.conftest import DEPLOY_DIR, UNITS_DIR, resolve_softatm_command, unit


@pytest.fixture(scope="module")
def scheduler() -> ModuleType:
    spec = importlib.util.spec_from_file_location("softatm_scheduler", DEPLOY_DIR / "scheduler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up in sys.modules while the class is made.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_every_minute(scheduler: ModuleType) -> None:
    job = scheduler.Job("sweep", ("true",), every_s=60)
    assert job.next_run(utc(2026, 3, 10, 1, 0, 0)) == utc(2026, 3, 10, 1, 1, 0)


def test_daily_at_a_vietnamese_time(scheduler: ModuleType) -> None:
    job = scheduler.Job("verify", ("true",), daily_at=dt.time(2, 30))
    # 19:00 UTC is 02:00 the next day in Vietnam: due half an hour later, at 19:30 UTC.
    assert job.next_run(utc(2026, 3, 9, 19, 0)) == utc(2026, 3, 9, 19, 30)
    assert job.next_run(utc(2026, 3, 9, 19, 30)) == utc(2026, 3, 10, 19, 30)
    assert job.next_run(utc(2026, 3, 9, 20, 0)) == utc(2026, 3, 10, 19, 30)


def test_run_once_reports_each_ending(
    scheduler: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    runner = scheduler.Scheduler(())
    caplog.set_level(logging.INFO, logger="softatm.scheduler")
    assert runner.run_once(scheduler.Job("ok", ("true",), every_s=60)) == 0
    assert runner.run_once(scheduler.Job("bad", ("false",), every_s=60)) == 1
    slow = scheduler.Job("slow", ("sleep", "5"), every_s=60, timeout_s=0)
    assert runner.run_once(slow) is None
    events = [json.loads(record.getMessage()) for record in caplog.records]
    assert [(event["job"], event["event"]) for event in events] == [
        ("ok", "done"),
        ("bad", "failed"),
        ("slow", "timed out"),
    ]
    assert [record.levelname for record in caplog.records] == ["INFO", "ERROR", "ERROR"]


def test_jobs_match_the_systemd_timers(scheduler: ModuleType) -> None:
    by_name = {job.name: job for job in scheduler.JOBS}
    assert set(by_name) == {"sweep", "adoption-rollup", "verify", "drawer-report"}
    for name, job in by_name.items():
        assert job.command[0] == "softatm"
        resolve_softatm_command(list(job.command[1:]))
        service = unit(UNITS_DIR / f"softatm-{name}.service")["Service"]
        assert service["ExecStart"].split()[1:] == list(job.command[1:])
        calendar = unit(UNITS_DIR / f"softatm-{name}.timer")["Timer"]["OnCalendar"]
        if job.every_s is not None:
            assert (job.every_s, calendar) == (60, "minutely")
        else:
            assert calendar == f"*-*-* {job.daily_at:%H:%M:%S} Asia/Ho_Chi_Minh"
