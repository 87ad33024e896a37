"""Verify, redeem and cash-in through /api/v1 with an agent's credential: the counter's rules,
idempotency, and a code paid at most once across the API and the counter's pages."""

from __future__ import annotations

import uuid

from flask import Flask
from sqlalchemy import select

from agent_portal.models import CounterOperation
from kiosk.api.idempotency import fingerprint
from kiosk.api.models import IdempotencyRecord, IdempotencyState
from tests.agent_portal.conftest import app_session
from tests.agent_portal.counter_support import (
    assert_ledger_sound,
    check_last4,
    make_citizen,
    operations_of_code,
    pay,
    posted,
    scan,
    set_up_desk,
    ticket_of,
    withdrawal_code,
    wrong_last4,
)
from tests.api.conftest import agent_token, assert_problem, bearer, post, utc_now

VERIFY = "/api/v1/codes/verify"
REDEEM = "/api/v1/redemptions"
CASH_IN = "/api/v1/cash-ins"


def _verified(app: Flask, token: str, code_token: str) -> dict:
    response = post(app.test_client(), VERIFY, token, {"token": code_token}, key=None)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict = response.get_json()
    return body


def test_a_code_verified_and_redeemed_through_the_api_pays_out_once(counter_app: Flask) -> None:
    desk = set_up_desk(counter_app)
    token = agent_token(counter_app, desk.agent)
    citizen = make_citizen(counter_app, balance_vnd=2_000_000)
    code = withdrawal_code(counter_app, citizen, 500_000)
    inspection = _verified(counter_app, token, code.token)
    assert inspection["amount_vnd"] == 500_000
    assert inspection["masked_citizen_id"].endswith(citizen.citizen_id_last4)
    client = counter_app.test_client()
    body = {"ticket": inspection["ticket"], "last4": citizen.citizen_id_last4, "face_matched": True}
    first = post(client, REDEEM, token, body, key="redeem-1")
    assert first.status_code == 201, first.get_data(as_text=True)
    again = post(client, REDEEM, token, body, key="redeem-1")
    assert again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(operations_of_code(counter_app, code.id)) == 1
    assert posted(counter_app, desk.drawer_account_id) == 20_000_000 - 500_000
    assert_ledger_sound(counter_app)


def test_the_same_key_with_another_body_is_refused(counter_app: Flask) -> None:
    desk = set_up_desk(counter_app)
    token = agent_token(counter_app, desk.agent)
    citizen = make_citizen(counter_app, balance_vnd=2_000_000)
    client = counter_app.test_client()
    first = post(client, CASH_IN, token, {"citizen_id": citizen.id, "amount_vnd": 100_000}, key="k")
    assert first.status_code == 201, first.get_data(as_text=True)
    other = post(client, CASH_IN, token, {"citizen_id": citizen.id, "amount_vnd": 900_000}, key="k")
    assert_problem(other, 422, "idempotency-key-reused")
    assert posted(counter_app, citizen.wallet_account_id) == 2_100_000


def test_a_key_still_in_progress_answers_409(counter_app: Flask) -> None:
    desk = set_up_desk(counter_app)
    token = agent_token(counter_app, desk.agent)
    citizen = make_citizen(counter_app)
    body = {"citizen_id": citizen.id, "amount_vnd": 100_000}
    credential_id = token.split(".")[0]
    # Another worker has claimed the key and is still working (its record is committed).
    with app_session(counter_app) as session:
        session.add(
            IdempotencyRecord(
                credential_id=credential_id,
                key="busy",
                fingerprint=fingerprint(
                    counter_app.config["SECRET_KEY"],
                    method="POST",
                    path=CASH_IN,
                    credential_id=credential_id,
                    body=body,
                ),
                state=IdempotencyState.IN_PROGRESS.value,
                created_at=utc_now(),
                started_at=utc_now(),
            )
        )
        session.commit()
    response = post(counter_app.test_client(), CASH_IN, token, body, key="busy")
    assert_problem(response, 409, "idempotency-in-progress")
    assert posted(counter_app, citizen.wallet_account_id) == 0


def test_a_money_moving_post_without_an_idempotency_key_is_refused(counter_app: Flask) -> None:
    desk = set_up_desk(counter_app, cash=0, opened=False)
    token = agent_token(counter_app, desk.agent)
    response = post(
        counter_app.test_client(), CASH_IN, token, {"citizen_id": 1, "amount_vnd": 1}, key=None
    )
    assert_problem(response, 400, "idempotency-key-missing")


def test_a_wrong_id_card_is_refused_and_the_refusal_is_replayed(counter_app: Flask) -> None:
    desk = set_up_desk(counter_app)
    token = agent_token(counter_app, desk.agent)
    citizen = make_citizen(counter_app, balance_vnd=1_000_000)
    code = withdrawal_code(counter_app, citizen, 500_000)
    inspection = _verified(counter_app, token, code.token)
    body = {"ticket": inspection["ticket"], "last4": wrong_last4(citizen), "face_matched": True}
    client = counter_app.test_client()
    refused = assert_problem(post(client, REDEEM, token, body, key="x"), 422, "identity-mismatch")
    assert refused["reason"] == "identity_mismatch"
    assert_problem(post(client, REDEEM, token, body, key="x"), 422, "identity-mismatch")
    assert operations_of_code(counter_app, code.id) == []


def test_a_code_paid_at_the_counter_is_refused_by_the_api(counter_app: Flask) -> None:
    desk = set_up_desk(counter_app)
    token = agent_token(counter_app, desk.agent)
    citizen = make_citizen(counter_app, balance_vnd=1_000_000)
    code = withdrawal_code(counter_app, citizen, 500_000)
    inspection = _verified(counter_app, token, code.token)
    # The same code, scanned and paid meanwhile on the pages of another counter of the point.
    counter_desk = set_up_desk(counter_app, post_office=desk.post_office)
    ticket = ticket_of(scan(counter_desk.client, code.token))
    check_last4(counter_desk.client, ticket, citizen.citizen_id_last4)
    assert pay(counter_desk.client, ticket, citizen.citizen_id_last4).status_code == 303
    body = {"ticket": inspection["ticket"], "last4": citizen.citizen_id_last4, "face_matched": True}
    response = post(counter_app.test_client(), REDEEM, token, body)
    assert_problem(response, 409, "code-already-paid")
    assert len(operations_of_code(counter_app, code.id)) == 1
    assert_ledger_sound(counter_app)


def test_another_credentials_ticket_is_not_found(counter_app: Flask) -> None:
    desk = set_up_desk(counter_app)
    other = set_up_desk(counter_app)
    citizen = make_citizen(counter_app, balance_vnd=1_000_000)
    code = withdrawal_code(counter_app, citizen, 500_000)
    inspection = _verified(counter_app, agent_token(counter_app, desk.agent), code.token)
    body = {"ticket": inspection["ticket"], "last4": citizen.citizen_id_last4, "face_matched": True}
    response = post(counter_app.test_client(), REDEEM, agent_token(counter_app, other.agent), body)
    assert_problem(response, 404, "not-found")


def test_a_forged_code_is_refused_with_its_reason(counter_app: Flask) -> None:
    desk = set_up_desk(counter_app, cash=0, opened=False)
    token = agent_token(counter_app, desk.agent)
    response = post(counter_app.test_client(), VERIFY, token, {"token": "SA1:nonsense"}, key=None)
    body = assert_problem(response, 422)
    assert body["code"] in {"code-unreadable", "code-forged"}


def test_cash_in_through_the_api_credits_the_wallet_once(counter_app: Flask) -> None:
    desk = set_up_desk(counter_app)
    token = agent_token(counter_app, desk.agent)
    citizen = make_citizen(counter_app)
    client = counter_app.test_client()
    body = {"phone": citizen.phone, "amount_vnd": 300_000}
    key = str(uuid.uuid4())
    first = post(client, CASH_IN, token, body, key=key)
    assert first.status_code == 201, first.get_data(as_text=True)
    assert first.get_json()["kind"] == "cash_in"
    assert post(client, CASH_IN, token, body, key=key).get_json() == first.get_json()
    assert posted(counter_app, citizen.wallet_account_id) == 300_000
    with app_session(counter_app) as session:
        count = len(
            session.scalars(
                select(CounterOperation).where(CounterOperation.citizen_id == citizen.id)
            ).all()
        )
    assert count == 1


def test_cash_in_without_an_open_drawer_is_refused(counter_app: Flask) -> None:
    desk = set_up_desk(counter_app, cash=0, opened=False)
    citizen = make_citizen(counter_app)
    response = post(
        counter_app.test_client(),
        CASH_IN,
        agent_token(counter_app, desk.agent),
        {"citizen_id": citizen.id, "amount_vnd": 100_000},
    )
    assert_problem(response, 422, "cash-in-refused")


def test_an_unknown_citizen_is_not_found(counter_app: Flask) -> None:
    desk = set_up_desk(counter_app, cash=0, opened=False)
    response = counter_app.test_client().post(
        CASH_IN,
        json={"citizen_id": 2**40, "amount_vnd": 100_000},
        headers={**bearer(agent_token(counter_app, desk.agent)), "Idempotency-Key": "a"},
    )
    assert_problem(response, 404, "not-found")
