from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.mark.slow
def test_token_parsers_survive_ten_seconds_of_coverage_guided_fuzzing(
    run_proof: Callable[..., Any], tmp_path: Path
) -> None:
    run = run_proof("fuzz-tokens", "--seconds", "10", "--artifacts", str(tmp_path))
    assert run.value("fuzz_tokens_crashes") == 0, run.stderr[-3000:]
    assert run.value("fuzz_tokens_executions") > 0
    assert run.returncode == 0, run.stderr[-3000:]
