"""Visits sent from a phone that loses its network: the same visit sent again is stored once,
the same id with other content is refused and changes nothing, and the page works both as a
plain form and for the script that keeps visits on the phone (visit.js)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from kiosk.community.households import add_person, register_household
from kiosk.community.models import (
    ChecklistEntry,
    ChecklistStep,
    Official,
    OfficialRole,
    Village,
    Visit,
)
from tests.browser.conftest import (  # the real browser, for the offline test
    chromium_path,
    live_app,
    live_url,
    phone_page,
    screenshot,
)
from tests.community.support import app_session, make_official, make_village, sign_in_official
from tests.community.test_checklist import entry_of, visit_form
from tests.community.test_households import count, person_form, team_with_household

__all__ = ["chromium_path", "live_app", "live_url", "phone_page"]

JSON_HEADERS = {"Accept": "application/json"}


def test_the_same_visit_sent_twice_is_stored_once(
    community_app: Flask, community_client: FlaskClient
) -> None:
    _member, _village, household_id, person_id = team_with_household(
        community_app, community_client
    )
    form = visit_form(
        person_id,
        {ChecklistStep.SMARTPHONE: ("done", "seen_on_phone", "")},
        note="Bà Lan ở nhà một mình",
    )
    path = f"/quan-ly/ho/{household_id}/tham"
    first = community_client.post(path, data=form, follow_redirects=True)
    assert "Đã lưu chuyến thăm" in first.get_data(as_text=True)
    before = entry_of(community_app, person_id, ChecklistStep.SMARTPHONE)
    again = community_client.post(path, data=form, follow_redirects=True)
    assert again.status_code == 200
    assert "đã được lưu trước đó" in again.get_data(as_text=True)
    assert count(community_app, Visit, Visit.household_id == household_id) == 1
    after = entry_of(community_app, person_id, ChecklistStep.SMARTPHONE)
    assert before is not None and after is not None
    assert (after.version, after.recorded_at) == (before.version, before.recorded_at)


def test_a_visit_kept_on_the_phone_and_sent_again_is_stored_once(
    community_app: Flask, community_client: FlaskClient
) -> None:
    _member, _village, household_id, person_id = team_with_household(
        community_app, community_client
    )
    form = visit_form(person_id, {ChecklistStep.VNEID_LEVEL2: ("refused", "", "không tin")})
    path = f"/quan-ly/ho/{household_id}/tham"
    answers = [
        community_client.post(path, data=form, headers=JSON_HEADERS).get_json() for _ in range(3)
    ]
    assert [answer["status"] for answer in answers] == [
        "stored",
        "already_stored",
        "already_stored",
    ]
    assert {answer["visit_id"] for answer in answers} == {form["visit_id"]}
    assert answers[0]["next"] == f"/quan-ly/ho/{household_id}"
    assert count(community_app, Visit, Visit.id == uuid.UUID(form["visit_id"])) == 1
    assert count(community_app, ChecklistEntry, ChecklistEntry.person_id == person_id) == 1


def test_the_same_visit_id_with_other_content_is_refused_and_changes_nothing(
    community_app: Flask, community_client: FlaskClient
) -> None:
    _member, _village, household_id, person_id = team_with_household(
        community_app, community_client
    )
    path = f"/quan-ly/ho/{household_id}/tham"
    form = visit_form(person_id, {ChecklistStep.SMARTPHONE: ("done", "self_reported", "")})
    assert community_client.post(path, data=form).status_code == 302
    before = entry_of(community_app, person_id, ChecklistStep.SMARTPHONE)

    changed = {**form, f"{person_id}:smartphone:status": "not_done"}
    changed[f"{person_id}:smartphone:reason"] = "điện thoại hỏng"
    refused = community_client.post(path, data=changed)
    assert refused.status_code == 409
    page = refused.get_data(as_text=True)
    assert "nội dung khác" in page
    # What was typed is offered again under a new id, to be sent as a new visit.
    assert form["visit_id"] not in page
    as_json = community_client.post(path, data=changed, headers=JSON_HEADERS)
    assert as_json.status_code == 409
    assert as_json.get_json()["status"] == "conflict"

    after = entry_of(community_app, person_id, ChecklistStep.SMARTPHONE)
    assert before is not None and after is not None
    assert (after.status, after.version) == ("done", before.version)
    assert count(community_app, Visit, Visit.household_id == household_id) == 1


def test_a_visit_id_cannot_be_reused_for_another_household(
    community_app: Flask, community_client: FlaskClient
) -> None:
    _member, village_id, household_id, person_id = team_with_household(
        community_app, community_client
    )
    form = visit_form(person_id, {ChecklistStep.SMARTPHONE: ("done", "self_reported", "")})
    assert community_client.post(f"/quan-ly/ho/{household_id}/tham", data=form).status_code == 302
    other = community_client.post(
        "/quan-ly/ho/moi",
        data={"household_id": str(uuid.uuid4()), "village": str(village_id), "head_name": "Lò An"},
    )
    other_id = other.headers["Location"].split("/")[-2]
    response = community_client.post(f"/quan-ly/ho/{other_id}/tham", data=form)
    assert response.status_code == 409


def test_an_invalid_visit_answers_json_with_every_problem(
    community_app: Flask, community_client: FlaskClient
) -> None:
    _member, _village, household_id, person_id = team_with_household(
        community_app, community_client
    )
    form = visit_form(person_id, {ChecklistStep.SMARTPHONE: ("refused", "", "")})
    form["visited_at"] = "hôm qua"
    response = community_client.post(
        f"/quan-ly/ho/{household_id}/tham", data=form, headers=JSON_HEADERS
    )
    assert response.status_code == 422
    answer = response.get_json()
    assert answer["status"] == "invalid"
    assert set(answer["errors"]) == {"visited_at", f"{person_id}:smartphone:reason"}
    assert count(community_app, Visit, Visit.household_id == household_id) == 0


def test_a_visit_too_old_or_in_the_future_is_refused(
    community_app: Flask, community_client: FlaskClient
) -> None:
    _member, _village, household_id, person_id = team_with_household(
        community_app, community_client
    )
    now = dt.datetime.now(dt.UTC)
    path = f"/quan-ly/ho/{household_id}/tham"
    for moment in (now - dt.timedelta(days=90), now + dt.timedelta(hours=2)):
        form = visit_form(person_id, {}, visited_at=moment)
        assert community_client.post(path, data=form).status_code == 422
    assert count(community_app, Visit, Visit.household_id == household_id) == 0


def test_the_visit_page_works_without_javascript_and_loads_the_offline_script(
    community_app: Flask, community_client: FlaskClient
) -> None:
    _member, _village, household_id, person_id = team_with_household(
        community_app, community_client
    )
    path = f"/quan-ly/ho/{household_id}/tham"
    page = community_client.get(path).get_data(as_text=True)
    assert f'method="post" class="visit-form" action="{path}"' in page
    assert '<script src="/static/visit.js" defer></script>' in page
    assert "<script>" not in page  # no inline script: the CSP forbids it
    assert f'name="{person_id}:smartphone:status"' in page
    ids = re.findall(r'name="visit_id" value="([0-9a-f-]{36})"', page)
    assert len(ids) == 1
    second = community_client.get(path).get_data(as_text=True)
    assert ids[0] not in second  # every page drawn gets a new visit id
    assert "Đã lưu trên máy, sẽ gửi khi có mạng" in page
    script = community_client.get("/static/visit.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["Content-Type"]
    source = script.get_data(as_text=True)
    assert "localStorage" in source and '"online"' in source
    script.close()


# --- In a real browser, offline -----------------------------------------------------------------


def test_a_visit_made_offline_is_kept_on_the_phone_and_sent_once_back_online(
    phone_page: Any, live_url: str, live_app: Flask
) -> None:
    """Headless Chromium on a phone-sized screen, CSRF on: the network drops as the team member
    sends the visit; the visit waits in the phone's outbox, survives a reload, and is stored
    once when the network comes back (sent again by hand too, for good measure)."""
    village_id = make_village(live_app)
    member = make_official(live_app, OfficialRole.TEAM_MEMBER, village_ids=[village_id])
    household_id = uuid.uuid4()
    person_id = uuid.uuid4()
    now = dt.datetime.now(dt.UTC)
    with app_session(live_app) as session, live_app.test_request_context():
        village = session.get(Village, village_id)
        official = session.get(Official, member.id)
        assert village is not None and official is not None
        household = register_household(
            session,
            {"household_id": str(household_id), "head_name": "Vi Văn Mạnh"},
            village=village,
            official=official,
            now=now,
        )
        add_person(
            session,
            household,
            person_form(person_id=str(person_id), full_name="Vi Thị Hồng"),
            official=official,
            now=now,
        )
        session.commit()
    client = live_app.test_client()
    sign_in_official(live_app, client, member)
    cookie = client.get_cookie(live_app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    page = phone_page
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_url}])

    visit_path = f"/quan-ly/ho/{household_id}/tham"
    page.goto(live_url + visit_path)
    page.select_option(f"select[name='{person_id}:smartphone:status']", "done")
    page.select_option(f"select[name='{person_id}:smartphone:evidence']", "seen_on_phone")
    page.fill("#note", "Gặp chị Hồng ở nương")
    # The draft survives a reload before anything is sent.
    page.reload()
    assert page.input_value("#note") == "Gặp chị Hồng ở nương"
    assert page.input_value(f"select[name='{person_id}:smartphone:status']") == "done"

    page.context.set_offline(True)
    page.click("form.visit-form button[type=submit]")
    page.wait_for_selector(".visit-outbox:not([hidden])")
    status = page.text_content(".outbox-status") or ""
    assert "Đã lưu trên máy, sẽ gửi khi có mạng" in status and "1" in status
    screenshot(page, "community-visit-offline")
    assert page.input_value("#note") == ""  # the form is ready for the next visit
    assert count(live_app, Visit, Visit.household_id == household_id) == 0
    kept = page.evaluate("() => localStorage.getItem('softatm.visit-outbox')")

    page.context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_function(
        "() => JSON.parse(localStorage.getItem('softatm.visit-outbox') || '[]').length === 0"
    )
    assert count(live_app, Visit, Visit.household_id == household_id) == 1
    assert "Đã gửi xong" in (page.text_content(".outbox-status") or "")
    entry = entry_of(live_app, person_id, ChecklistStep.SMARTPHONE)
    assert entry is not None and entry.evidence == "seen_on_phone"

    # The same visit put back in the outbox (as on a phone that lost the server's answer) and
    # sent again is recognised: still one visit, and nothing refused.
    page.evaluate("(item) => localStorage.setItem('softatm.visit-outbox', item)", kept)
    page.reload()
    page.wait_for_function(
        "() => JSON.parse(localStorage.getItem('softatm.visit-outbox') || '[]').length === 0"
    )
    assert page.evaluate("() => localStorage.getItem('softatm.visit-refused')") is None
    assert count(live_app, Visit, Visit.household_id == household_id) == 1
