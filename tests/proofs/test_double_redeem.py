from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.slow
@pytest.mark.postgres
def test_codes_raced_by_several_counters_over_http_are_each_paid_exactly_once(
    run_proof: Callable[..., Any], postgres_url: str
) -> None:
    run = run_proof("double-redeem", "--codes", "5", "--clients", "4", "--workers", "2")
    assert run.value("double_redeem_paid") == 5, run.stderr[-3000:]
    assert run.value("double_redeem_double_payments") == 0
    assert run.value("double_redeem_server_errors") == 0
    assert run.value("double_redeem_ledger_verified") == 1
    assert run.returncode == 0, run.stderr[-3000:]
