"""Web hardening in CI: CSRF on every state-changing route and the security headers on every
page (in-process, SQLite), and brute force stopped across gunicorn workers (a short run of
`python -m bench.proofs hardening` on PostgreSQL: 2 workers; PIN, password and TOTP)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bench.proofs import authz, hardening


@pytest.fixture(scope="module")
def world() -> Iterator[authz.World]:
    with authz.sqlite_world() as built:
        yield built


def test_every_state_changing_route_refuses_a_post_without_a_valid_csrf_token(
    world: authz.World,
) -> None:
    result = hardening.check_csrf(world)
    assert result.routes > 50
    assert result.accepted == []
    assert result.db_changes == {}


def test_every_page_error_static_file_and_probe_carries_the_security_headers(
    world: authz.World,
) -> None:
    result = hardening.check_headers(world)
    assert result.responses > 80
    assert result.failures == []


def test_a_page_that_allows_inline_scripts_or_framing_is_reported(world: authz.World) -> None:
    # The proof of the proof: the checker sees a weak policy and a missing no-store.
    client, _token = world.client("citizen")
    response = client.get("/vi")
    response.headers["Content-Security-Policy"] = "default-src 'self' 'unsafe-inline'"
    del response.headers["Cache-Control"]
    problems = hardening.header_problems(response, signed_in=True)
    assert "CSP scripts: default-src 'self' 'unsafe-inline'" in problems
    assert "CSP without frame-ancestors 'none'" in problems
    assert "signed-in page without Cache-Control: no-store" in problems


@pytest.mark.slow
@pytest.mark.postgres
def test_guessing_pins_passwords_and_totp_codes_over_several_workers_stops_at_the_limit(
    run_proof: Callable[..., Any], postgres_url: str
) -> None:
    run = run_proof(
        "hardening",
        "--skip-in-process",
        "--workers",
        "2",
        "--connections",
        "4",
        "--guesses",
        "10",
        "--targets",
        "pin,agent-password,agent-totp",
    )
    assert run.value("hardening_bruteforce_targets") == 3, run.stderr[-3000:]
    assert run.value("hardening_bruteforce_got_through") == 0, run.stderr[-3000:]
    assert run.value("hardening_hsts_missing") == 0
    assert run.value("hardening_cookie_flag_failures") == 0
    assert run.returncode == 0, run.stderr[-3000:]
