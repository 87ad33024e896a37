"""Denominators and targets entered per commune and year, with their source and date."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from kiosk.adoption.demo import DEMO_COMMUNE, seed_demo
from kiosk.adoption.denominators import (
    DenominatorKind,
    InvalidEntry,
    denominators_of,
    set_denominator,
    set_target,
    targets_of,
)
from tests.adoption.rollup_support import (  # the session fixture
    NOW,
    adoption_session,
    fresh_communes,
)

__all__ = ["adoption_session"]


def enter(session: Session, commune: str, **changes: Any) -> None:
    fields: dict[str, Any] = {
        "commune_code": commune,
        "year": 2026,
        "kind": DenominatorKind.ADULTS,
        "value": 4_210,
        "source": "Công an xã, 01/2026",
        "as_of": dt.date(2026, 1, 15),
        "by": "official:3",
        "now": NOW,
    }
    set_denominator(session, **{**fields, **changes})


def aim(session: Session, commune: str, **changes: Any) -> None:
    fields: dict[str, Any] = {
        "commune_code": commune,
        "year": 2026,
        "key": "adults_with_account",
        "rate": 0.8,
        "source": "Nghị quyết HĐND xã số 12",
        "by": "official:3",
        "now": NOW,
    }
    set_target(session, **{**fields, **changes})


def test_denominators_are_kept_with_their_source_and_replaced(adoption_session: Session) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    enter(adoption_session, commune, kind=DenominatorKind.HOUSEHOLDS, value=1_300)
    enter(adoption_session, commune)
    enter(adoption_session, commune, value=4_300, source="  Công an xã,   02/2026 ")

    entries = denominators_of(adoption_session, commune, 2026)

    assert [(entry.kind, entry.value, entry.source) for entry in entries] == [
        (DenominatorKind.ADULTS, 4_300, "Công an xã, 02/2026"),
        (DenominatorKind.HOUSEHOLDS, 1_300, "Công an xã, 01/2026"),
    ]
    assert entries[0].as_of == dt.date(2026, 1, 15)
    assert entries[0].entered_by == "official:3" and entries[0].entered_at == NOW
    assert denominators_of(adoption_session, commune, 2025) == []


def test_targets_are_kept_exactly_and_listed_in_indicator_order(adoption_session: Session) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    aim(adoption_session, commune, key="first_payment_of_created", rate=0.333)
    aim(adoption_session, commune)
    aim(adoption_session, commune, rate=0.85)

    targets = targets_of(adoption_session, commune, 2026)

    assert [(target.key, target.rate) for target in targets] == [
        ("adults_with_account", 0.85),
        ("first_payment_of_created", 0.333),
    ]
    assert targets[0].entered_on == NOW.date()
    assert targets[0].source == "Nghị quyết HĐND xã số 12"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"commune_code": "99999"}, "commune_code"),
        ({"year": 1999}, "year"),
        ({"kind": "children"}, "kind"),
        ({"value": 0}, "value"),
        ({"value": -5}, "value"),
        ({"value": 12_000_000}, "value"),
        ({"value": True}, "value"),
        ({"source": "   "}, "source"),
        ({"source": "x" * 201}, "source"),
        ({"as_of": dt.date(2027, 1, 1)}, "as_of"),
    ],
)
def test_a_bad_denominator_is_refused_with_its_field(
    adoption_session: Session, changes: dict[str, Any], field: str
) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    with pytest.raises(InvalidEntry) as refused:
        enter(adoption_session, commune, **changes)
    assert refused.value.field == field
    assert refused.value.message
    assert denominators_of(adoption_session, commune, 2026) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"key": "median_days_to_first_payment"}, "key"),
        ({"key": "no_such_indicator"}, "key"),
        ({"rate": 0}, "rate"),
        ({"rate": 1.2}, "rate"),
        ({"rate": -0.1}, "rate"),
        ({"rate": 0.00001}, "rate"),
        ({"source": ""}, "source"),
        ({"year": 2101}, "year"),
    ],
)
def test_a_bad_target_is_refused_with_its_field(
    adoption_session: Session, changes: dict[str, Any], field: str
) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    with pytest.raises(InvalidEntry) as refused:
        aim(adoption_session, commune, **changes)
    assert refused.value.field == field
    assert targets_of(adoption_session, commune, 2026) == []


def test_a_full_target_of_100_percent_is_allowed(adoption_session: Session) -> None:
    (commune,) = fresh_communes(adoption_session, 1)
    aim(adoption_session, commune, rate=1)
    assert targets_of(adoption_session, commune, 2026)[0].rate == 1.0


def test_demo_enters_the_demo_communes_denominators_and_targets(
    adoption_session: Session,
) -> None:
    seed_demo(adoption_session, NOW)

    entries = denominators_of(adoption_session, DEMO_COMMUNE, 2026)
    assert [entry.kind for entry in entries] == list(DenominatorKind)
    assert all(entry.source for entry in entries)
    assert {target.key for target in targets_of(adoption_session, DEMO_COMMUNE, 2026)} >= {
        "adults_with_account"
    }
