"""The crash-consistency proof with a few kills. It starts its own PostgreSQL server and gunicorn
and takes about two minutes on two CPUs, so it runs only when PROVE_CRASH=1 (the full
proof is `make prove NAME=crash ARGS="--kills 60"`). The switch is not named SOFTATM_…: the
service refuses to start with a SOFTATM_ variable it does not know, and the harness starts it."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("PROVE_CRASH") != "1",
        reason="about two minutes: set PROVE_CRASH=1 to run it",
    ),
]


def test_acknowledged_operations_survive_killed_workers_and_database_exactly_once(
    run_proof: Callable[..., Any],
) -> None:
    run = run_proof("crash", "--kills", "4", "--clients", "3")
    assert run.value("crash_operations_acknowledged") > 0, run.stderr[-3000:]
    assert run.value("crash_operations_lost") == 0, run.stderr[-3000:]
    assert run.value("crash_half_done") == 0, run.stderr[-3000:]
    assert run.value("crash_ledger_verified") == 1
    assert run.returncode == 0, run.stderr[-3000:]
