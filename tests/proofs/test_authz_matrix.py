"""The authorization matrix in CI: every route x every role x own / other object, on SQLite.

The whole matrix runs here (a few seconds); `python -m bench.proofs authz` runs the same and
prints its figures. Who may do what is tests/proofs/authz_matrix.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from bench.proofs import authz
from tests.proofs import authz_matrix


@pytest.fixture(scope="module")
def world() -> Iterator[authz.World]:
    with authz.sqlite_world() as built:
        yield built


def test_every_route_of_the_route_map_has_a_matrix_entry(world: authz.World) -> None:
    endpoints = set(authz.endpoints_of(world.app))
    assert sorted(endpoints - set(authz_matrix.MATRIX)) == []
    assert sorted(set(authz_matrix.MATRIX) - endpoints) == []


def test_no_role_succeeds_where_the_matrix_does_not_allow_it(world: authz.World) -> None:
    result = authz.run_matrix(world)
    assert result.checked > 2000
    assert [authz.describe(o) for o in result.unauthorised] == []
    assert [authz.describe(o) for o in result.server_errors] == []
    assert [authz.describe(o) for o in result.allowed_refused] == []


def test_the_matrix_run_sees_a_success_the_matrix_does_not_allow(
    world: authz.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The proof of the proof: pretend the owner may not read their own code page.
    entry = authz_matrix.MATRIX["codes.show"]
    monkeypatch.setitem(
        authz_matrix.MATRIX,
        "codes.show",
        dataclasses.replace(entry, own=authz_matrix.NOBODY, other=authz_matrix.NOBODY),
    )
    result = authz.run_matrix(world, only=["codes.show"])
    assert {(o.cell.role, o.cell.variant) for o in result.unauthorised} == {
        ("citizen", "own"),
        ("other_citizen", "other"),
    }
