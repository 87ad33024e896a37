"""The fuzzing seed gives working credentials; the CLI makes and revokes credentials."""

from __future__ import annotations

from flask import Flask

from kiosk.api.cli import api_group
from kiosk.api.testing import seed_for_fuzzing
from tests.agent_portal.conftest import app_session
from tests.agent_portal.counter_support import make_agent, make_post_office
from tests.api.conftest import assert_problem, bearer


def test_the_fuzzing_seed_gives_tokens_that_work(web_app: Flask) -> None:
    with app_session(web_app) as session:
        seeded = seed_for_fuzzing(session)
        session.commit()
    client = web_app.test_client()
    balance = client.get(
        f"/api/v1/citizens/{seeded['citizen_ids'][1]}/balance", headers=bearer(seeded["token"])
    )
    assert balance.status_code == 200
    verified = client.post(
        "/api/v1/codes/verify",
        json={"token": seeded["withdrawal_code_token"]},
        headers=bearer(seeded["agent_token"]),
    )
    assert verified.status_code == 200, verified.get_data(as_text=True)


def test_the_cli_makes_a_credential_once_and_revokes_it(web_app: Flask) -> None:
    agent = make_agent(web_app, make_post_office(web_app))
    runner = web_app.test_cli_runner()
    made = runner.invoke(api_group, ["create-credential", "--agent", agent.username])
    assert made.exit_code == 0, made.output
    token = made.output.strip().splitlines()[-1]
    credential_id = token.split(".")[0]
    listed = runner.invoke(api_group, ["list"])
    assert credential_id in listed.output and token.split(".")[1] not in listed.output
    assert runner.invoke(api_group, ["revoke", credential_id]).exit_code == 0
    response = web_app.test_client().get("/api/v1/citizens/1/balance", headers=bearer(token))
    assert_problem(response, 401, "credential-revoked")
    system = runner.invoke(
        api_group, ["create-credential", "--system", "bank", "--scopes", "wallet:read,nope"]
    )
    assert system.exit_code != 0
