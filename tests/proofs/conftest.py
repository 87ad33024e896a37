"""Short versions of the proof harnesses (bench/proofs/), run as child processes.

A harness prints its figures as JSON lines and exits non-zero when its claim fails; a child
process keeps libFuzzer's exit, gunicorn and killed servers away from pytest's own process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROOF_TIMEOUT_S = 600


class ProofRun:
    def __init__(self, process: subprocess.CompletedProcess[str]) -> None:
        self.returncode = process.returncode
        self.stderr = process.stderr
        self.figures: dict[str, dict[str, object]] = {}
        for line in process.stdout.splitlines():
            record = json.loads(line)
            self.figures[record["name"]] = record

    def value(self, name: str) -> object:
        assert name in self.figures, f"{name} not printed; stderr:\n{self.stderr[-3000:]}"
        return self.figures[name]["value"]


@pytest.fixture
def run_proof() -> Callable[..., ProofRun]:
    def run(name: str, *options: str) -> ProofRun:
        process = subprocess.run(  # noqa: S603 - our own harness, by name
            [sys.executable, "-m", "bench.proofs", name, *options],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=PROOF_TIMEOUT_S,
            check=False,
        )
        return ProofRun(process)

    return run
