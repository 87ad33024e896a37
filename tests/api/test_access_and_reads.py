"""Credentials (missing, wrong, revoked, throttled, wrong scope, other places), the read
operations, codes made on a citizen's behalf, and problem details on every error status."""

from __future__ import annotations

import base64

import pytest
from flask import Flask
from sqlalchemy import select

from kiosk.api import credentials
from kiosk.api.credentials import API_AUTH_POLICY
from kiosk.api.models import IdempotencyRecord
from kiosk.auth.models import Throttle
from kiosk.citizens.credentials import hash_pin
from kiosk.citizens.models import Citizen
from tests.agent_portal.conftest import app_session
from tests.agent_portal.counter_support import balance, make_citizen, posted, set_up_desk
from tests.api.conftest import agent_token, assert_problem, bearer, post, system_token, utc_now

BALANCE = "/api/v1/citizens/{}/balance"
INDICATORS = "/api/v1/communes/{}/indicators"
WITHDRAWAL_CODES = "/api/v1/withdrawal-codes"
PIN = "135790"


def _with_pin(app: Flask, **options: object) -> Citizen:
    citizen = make_citizen(app, **options)
    with app_session(app) as session:
        found = session.get(Citizen, citizen.id)
        assert found is not None
        found.pin_hash = hash_pin(PIN)
        session.commit()
    return citizen


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "credential-missing"),
        ("Bearer nonsense", "credential-invalid"),
        ("Bearer sa_00000000000000000.secret", "credential-invalid"),
        ("Token abc", "credential-invalid"),
    ],
)
def test_a_request_without_a_good_credential_is_401(
    web_app: Flask, authorization: str | None, code: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = web_app.test_client().get(BALANCE.format(1), headers=headers)
    assert_problem(response, 401, code)


def test_a_wrong_secret_and_a_revoked_credential_are_401(web_app: Flask) -> None:
    token = system_token(web_app)
    credential_id = token.split(".")[0]
    client = web_app.test_client()
    assert_problem(
        client.get(BALANCE.format(1), headers=bearer(credential_id + ".wrong")),
        401,
        "credential-invalid",
    )
    with app_session(web_app) as session:
        credentials.revoke(session, credential_id, utc_now())
        session.commit()
    assert_problem(client.get(BALANCE.format(1), headers=bearer(token)), 401, "credential-revoked")


def test_wrong_secrets_are_counted_in_the_database_until_the_id_locks(web_app: Flask) -> None:
    credential_id = system_token(web_app).split(".")[0]
    client = web_app.test_client()
    for _attempt in range(API_AUTH_POLICY.attempts_max):
        assert_problem(client.get(BALANCE.format(1), headers=bearer(credential_id + ".x")), 401)
    locked = client.get(BALANCE.format(1), headers=bearer(credential_id + ".x"))
    assert_problem(locked, 429, "too-many-attempts")
    assert int(locked.headers["Retry-After"]) > 0
    with app_session(web_app) as session:
        row = session.scalar(
            select(Throttle).where(Throttle.key == f"api-credential:{credential_id}")
        )
        assert row is not None and row.locked_until is not None


def test_http_basic_works_like_bearer(web_app: Flask) -> None:
    citizen = make_citizen(web_app, balance_vnd=70_000)
    credential_id, secret = system_token(web_app).split(".", 1)
    basic = base64.b64encode(f"{credential_id}:{secret}".encode()).decode()
    response = web_app.test_client().get(
        BALANCE.format(citizen.id), headers={"Authorization": f"Basic {basic}"}
    )
    assert response.status_code == 200
    assert response.get_json()["available_vnd"] == 70_000


def test_a_credential_without_the_scope_is_403(counter_app: Flask) -> None:
    client = counter_app.test_client()
    reader = system_token(counter_app, ["indicators:read"])
    assert_problem(client.get(BALANCE.format(1), headers=bearer(reader)), 403, "scope-missing")
    assert_problem(
        post(
            client,
            "/api/v1/redemptions",
            reader,
            {"ticket": "t", "last4": "1", "face_matched": True},
        ),
        403,
        "scope-missing",
    )
    desk = set_up_desk(counter_app, cash=0, opened=False)
    agent = agent_token(counter_app, desk.agent)
    assert_problem(
        client.get(INDICATORS.format("00226"), headers=bearer(agent)), 403, "scope-missing"
    )


def test_a_citizen_of_another_commune_is_not_found(web_app: Flask) -> None:
    citizen = make_citizen(web_app, balance_vnd=10_000)
    with app_session(web_app) as session:
        from kiosk.places.models import Commune

        other = session.scalar(select(Commune.code).where(Commune.code != "00226").limit(1))
    elsewhere = system_token(web_app, ["wallet:read"], commune_code=other)
    response = web_app.test_client().get(BALANCE.format(citizen.id), headers=bearer(elsewhere))
    assert_problem(response, 404, "not-found")
    same_commune = system_token(web_app, ["wallet:read"], commune_code="00226")
    assert (
        web_app.test_client()
        .get(BALANCE.format(citizen.id), headers=bearer(same_commune))
        .status_code
        == 200
    )


def test_the_statement_lists_the_wallets_transfers(web_app: Flask) -> None:
    citizen = make_citizen(web_app, balance_vnd=40_000)
    response = web_app.test_client().get(
        f"/api/v1/citizens/{citizen.id}/statement?limit=5", headers=bearer(system_token(web_app))
    )
    assert response.status_code == 200
    lines = response.get_json()["lines"]
    assert [line["amount_vnd"] for line in lines] == [40_000]


def test_indicators_are_read_within_the_province_only(web_app: Flask) -> None:
    hanoi = system_token(web_app, ["indicators:read"], province_code="01")
    client = web_app.test_client()
    response = client.get(INDICATORS.format("00226") + "?period=2026-11", headers=bearer(hanoi))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["figures"]
    with app_session(web_app) as session:
        from kiosk.places.models import Commune

        elsewhere = session.scalar(select(Commune.code).where(Commune.province_code != "01"))
    assert_problem(
        client.get(INDICATORS.format(elsewhere), headers=bearer(hanoi)), 403, "place-forbidden"
    )
    assert_problem(
        client.get(INDICATORS.format("00226") + "?period=soon", headers=bearer(hanoi)),
        422,
        "period-invalid",
    )


def test_an_unknown_welfare_cycle_is_not_found(web_app: Flask) -> None:
    response = web_app.test_client().get(
        "/api/v1/welfare/cycles/999999", headers=bearer(system_token(web_app))
    )
    assert_problem(response, 404, "not-found")


def test_a_system_makes_a_code_with_the_citizens_pin_and_stores_no_token(web_app: Flask) -> None:
    citizen = _with_pin(web_app, balance_vnd=1_000_000)
    token = system_token(web_app, ["codes:create"])
    client = web_app.test_client()
    body = {"phone": citizen.phone, "pin": PIN, "amount_vnd": 200_000}
    first = post(client, WITHDRAWAL_CODES, token, body, key="w1")
    assert first.status_code == 201, first.get_data(as_text=True)
    made = first.get_json()
    assert made["token"] and made["fallback_digits"]
    again = post(client, WITHDRAWAL_CODES, token, body, key="w1")
    assert again.status_code == 201
    assert again.get_json()["code_id"] == made["code_id"]
    assert again.get_json()["token"]
    with app_session(web_app) as session:
        stored = session.scalars(select(IdempotencyRecord.response_body)).all()
    assert all(made["token"] not in text for text in stored if text)
    wrong = post(client, WITHDRAWAL_CODES, token, {**body, "pin": "000000"})
    assert_problem(wrong, 422, "citizen-pin-wrong")


def test_an_agent_makes_a_code_only_with_the_id_card_checked(counter_app: Flask) -> None:
    citizen = _with_pin(counter_app, balance_vnd=1_000_000)
    desk = set_up_desk(counter_app, cash=0, opened=False)
    token = agent_token(counter_app, desk.agent)
    client = counter_app.test_client()
    body = {"phone": citizen.phone, "pin": PIN, "amount_vnd": 200_000}
    assert_problem(post(client, WITHDRAWAL_CODES, token, body), 422, "identity-mismatch")
    checked = {**body, "last4": citizen.citizen_id_last4, "face_matched": True}
    assert post(client, WITHDRAWAL_CODES, token, checked).status_code == 201
    assert posted(counter_app, citizen.wallet_account_id) == 1_000_000


@pytest.mark.parametrize(
    ("field", "value"),
    [("face_matched", "yes"), ("face_matched", 1), ("amount_vnd", "200000"), ("amount_vnd", True)],
)
def test_a_body_takes_json_types_as_the_document_gives_them(
    counter_app: Flask, field: str, value: object
) -> None:
    """A boolean is true or false and an amount a JSON integer: "yes", 1 or "200000" are refused,
    not read as what they might mean, and nothing is reserved."""
    citizen = _with_pin(counter_app, balance_vnd=1_000_000)
    desk = set_up_desk(counter_app, cash=0, opened=False)
    token = agent_token(counter_app, desk.agent)
    client = counter_app.test_client()
    body = {
        "phone": citizen.phone,
        "pin": PIN,
        "amount_vnd": 200_000,
        "last4": citizen.citizen_id_last4,
        "face_matched": True,
    }
    refused = post(client, WITHDRAWAL_CODES, token, {**body, field: value})
    errors = assert_problem(refused, 422, "validation-failed")["errors"]
    assert [error["field"] for error in errors] == [field]
    assert balance(counter_app, citizen.wallet_account_id).available == 1_000_000
    assert post(client, WITHDRAWAL_CODES, token, body).status_code == 201


def test_every_error_is_problem_details(web_app: Flask) -> None:
    client = web_app.test_client()
    token = system_token(web_app)
    assert_problem(client.get("/api/v1/no-such-thing"), 404, "not-found")
    assert_problem(
        client.delete(BALANCE.format(1), headers=bearer(token)), 405, "method-not-allowed"
    )
    assert_problem(
        client.post(WITHDRAWAL_CODES, data="x", headers={**bearer(token), "Idempotency-Key": "k"}),
        415,
        "unsupported-media-type",
    )
    assert_problem(
        client.post(
            WITHDRAWAL_CODES,
            data="{not json",
            content_type="application/json",
            headers={**bearer(token), "Idempotency-Key": "k"},
        ),
        400,
        "malformed-json",
    )
    assert_problem(
        client.post(
            WITHDRAWAL_CODES,
            data="[" * 20_000,
            content_type="application/json",
            headers={**bearer(token), "Idempotency-Key": "k"},
        ),
        413,
        "body-too-large",
    )
    invalid = post(client, WITHDRAWAL_CODES, token, {"phone": "x"})
    assert assert_problem(invalid, 422, "validation-failed")["errors"]
    # The rest of the site keeps its HTML error pages.
    assert client.get("/khong-co-trang-nay").mimetype == "text/html"


def test_an_unexpected_error_is_a_500_problem(
    web_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    web_app.config["PROPAGATE_EXCEPTIONS"] = False
    from kiosk.api import views

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(views.ledger, "balance", broken)
    citizen = make_citizen(web_app)
    response = web_app.test_client().get(
        BALANCE.format(citizen.id), headers=bearer(system_token(web_app))
    )
    body = assert_problem(response, 500, "internal-error")
    assert "boom" not in body["detail"]
