"""Privacy in CI: after a flow through the citizen, counter, officials' and API areas on SQLite,
no citizen ID number, PIN or token used is in any column in clear, nor in the JSON log lines
the app writes (through its real handler and redaction filter).

`python -m bench.proofs privacy` does the same over HTTP through gunicorn on PostgreSQL, with
the demo data and the server's captured logs.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bench.proofs import authz, privacy
from kiosk import observability


@pytest.fixture
def world() -> Iterator[authz.World]:
    with authz.sqlite_world() as built:
        yield built


@pytest.fixture
def app_log() -> Iterator[io.StringIO]:
    """What the app's JSON handler (with its redaction filter) writes while the test runs."""
    stream = io.StringIO()
    handler = observability.json_handler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def _post(world: authz.World, role: str, path: str, form: dict[str, str]) -> Any:
    client, token = world.client(role)
    return client.post(path, data={**form, "csrf_token": token})


def _flow(world: authz.World) -> None:
    """A citizen signs in (wrong PIN, right PIN), an agent scans a code, an official adds a
    person with an ID number, the API verifies a code and makes one on a citizen's behalf."""
    used = world.secrets_used
    phone = world.value("phone", "own")
    anonymous = world.app.test_client()
    _client, token = world.client("anonymous")
    for pin in ("135792", authz.PIN):
        used[f"pin:typed{pin}"] = pin
        anonymous.post("/dang-nhap", data={"phone": phone, "pin": pin, "csrf_token": token})
    scanned = _post(world, "agent", "/quay/quet", {"ma": world.value("code_token", "own")})
    assert scanned.status_code == 200, scanned.status_code
    number = "001060123457"
    used["citizen_id:typed"] = number
    added = _post(
        world,
        "commune_official",
        f"/quan-ly/ho/{world.value('household', 'own')}/them-nguoi",
        {
            "person_id": str(uuid.uuid4()),
            "full_name": "Lê Văn Tư",
            "birth_day": "1",
            "birth_month": "1",
            "birth_year": "1960",
            "sex": "male",
            "citizen_id": number,
            "welfare": "yes",
            "consent": "yes",
        },
    )
    assert added.status_code in (302, 303), added.get_data(as_text=True)[-2000:]
    api = world.app.test_client()
    bearer = {"Authorization": f"Bearer {world.principals['api_agent'].bearer}"}
    verified = api.post(
        "/api/v1/codes/verify",
        json={"token": world.value("code_token", "other")},
        headers={**bearer, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert verified.status_code == 200, verified.get_data(as_text=True)
    made = api.post(
        "/api/v1/withdrawal-codes",
        json={"phone": phone, "pin": authz.PIN, "amount_vnd": 100_000},
        headers={
            "Authorization": f"Bearer {world.principals['api_system'].bearer}",
            "Idempotency-Key": str(uuid.uuid4()),
        },
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    used["token:api_code"] = made.get_json()["token"]


def _scan(world: authz.World, log_text: str) -> privacy.Scan:
    needles = privacy.all_needles(world.secrets_used)
    scan = privacy.Scan()
    with world.app.app_context():
        from kiosk import database

        with database.database().engine.connect() as connection:
            privacy.scan_database(connection, needles, scan)
    scan.log_bytes = len(log_text.encode())
    for number, line in enumerate(log_text.splitlines(), 1):
        privacy.search(line.encode(), needles, f"log line {number}", scan)
    return scan


def test_no_id_number_pin_or_token_is_kept_in_clear_in_the_database_or_the_logs(
    world: authz.World, app_log: io.StringIO
) -> None:
    _flow(world)
    scan = _scan(world, app_log.getvalue())
    assert scan.columns > 50
    assert scan.log_bytes > 0
    assert any(name.startswith("citizen_id") for name in world.secrets_used)
    assert privacy.dedupe(scan.found) == []


def test_the_scan_finds_an_id_number_written_in_clear(world: authz.World) -> None:
    # The proof of the proof: an ID number typed into a household's address is found.
    number = world.secrets_used["citizen_id:a"]
    with authz.app_session(world.app) as session:
        from kiosk.community.models import Household

        household = session.get(Household, world.value("household", "own"))
        household.address = f"CCCD {number}"
        session.commit()
    scan = _scan(world, f"GET /x?cccd={number.encode().hex()}\n")
    assert "citizen_id:a in households.address" in scan.found
    assert "citizen_id:a (hex) in log line 1" in scan.found
