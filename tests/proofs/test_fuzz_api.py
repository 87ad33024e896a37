from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def _assert_clean(run: Any) -> None:
    assert run.value("fuzz_api_server_errors") == 0, run.stderr[-3000:]
    assert run.value("fuzz_api_schema_violations") == 0, run.stderr[-3000:]
    assert run.value("fuzz_api_other_failures") == 0, run.stderr[-3000:]
    assert run.value("fuzz_api_operations") >= 10
    assert run.value("fuzz_api_calls") > 0
    assert run.value("fuzz_api_anonymous_calls") > 0
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.slow
def test_generated_api_calls_get_no_server_error_and_every_answer_fits_the_document(
    run_proof: Callable[..., Any],
) -> None:
    _assert_clean(run_proof("fuzz-api", "--examples", "5"))


@pytest.mark.slow
@pytest.mark.postgres
def test_generated_api_calls_on_postgresql_get_no_server_error_and_fit_the_document(
    run_proof: Callable[..., Any], postgres_url: str
) -> None:
    _assert_clean(run_proof("fuzz-api", "--database", "postgresql", "--examples", "3"))
