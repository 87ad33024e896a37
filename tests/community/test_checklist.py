"""The checklist's rules: what an answer needs, what the system ticks itself and what a person's
answer may never change, and a late older visit that must not undo a newer answer."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kiosk.community.checklist import (
    AnswerInvalid,
    entries_of,
    make_answer,
    progress_of,
    steps_for,
    tick_from_system,
)
from kiosk.community.models import ChecklistEntry, ChecklistStep, Evidence, Person, StepStatus
from kiosk.community.visits import local_input_value
from tests.community.support import app_session
from tests.community.test_households import citizen_number, count, team_with_household
from tests.kiosk.citizen_support import make_citizen


def visit_form(
    person_id: uuid.UUID,
    answers: dict[ChecklistStep, tuple[str, str, str]],
    *,
    visited_at: dt.datetime | None = None,
    visit_id: uuid.UUID | None = None,
    note: str = "",
) -> dict[str, str]:
    """The visit page's fields: each answer is (status, evidence, reason)."""
    form = {
        "visit_id": str(visit_id or uuid.uuid4()),
        "visited_at": local_input_value(visited_at or dt.datetime.now(dt.UTC)),
        "note": note,
    }
    for step, (status, evidence, reason) in answers.items():
        form[f"{person_id}:{step.value}:status"] = status
        form[f"{person_id}:{step.value}:evidence"] = evidence
        form[f"{person_id}:{step.value}:reason"] = reason
    return form


def entry_of(app: Flask, person_id: uuid.UUID, step: ChecklistStep) -> ChecklistEntry | None:
    with app_session(app) as session:
        return entries_of(session, [person_id]).get((person_id, step))


def a_person(welfare: bool = False) -> Person:
    return Person(id=uuid.uuid4(), welfare_beneficiary=welfare)


# --- One answer ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [StepStatus.NOT_DONE, StepStatus.REFUSED])
def test_a_step_not_done_or_refused_needs_a_reason(status: StepStatus) -> None:
    person = a_person()
    with pytest.raises(AnswerInvalid, match="lý do"):
        make_answer(person, ChecklistStep.SMARTPHONE, status, None, "   ")
    answer = make_answer(person, ChecklistStep.SMARTPHONE, status, None, " không  có tiền ")
    assert (answer.reason, answer.evidence) == ("không có tiền", Evidence.SELF_REPORTED)


def test_a_step_done_says_how_it_is_known_and_never_as_the_system() -> None:
    person = a_person()
    with pytest.raises(AnswerInvalid, match="bằng chứng"):
        make_answer(person, ChecklistStep.SMARTPHONE, StepStatus.DONE, None, "")
    with pytest.raises(AnswerInvalid, match="Chỉ hệ thống"):
        make_answer(person, ChecklistStep.SMARTPHONE, StepStatus.DONE, Evidence.SYSTEM, "")
    seen = make_answer(
        person, ChecklistStep.SMARTPHONE, StepStatus.DONE, Evidence.SEEN_ON_PHONE, ""
    )
    assert seen.evidence is Evidence.SEEN_ON_PHONE


def test_the_welfare_step_is_only_for_welfare_beneficiaries() -> None:
    assert ChecklistStep.WELFARE_ACCOUNT not in steps_for(a_person())
    assert len(steps_for(a_person(welfare=True))) == len(ChecklistStep) == 9
    with pytest.raises(AnswerInvalid, match="trợ cấp"):
        make_answer(a_person(), ChecklistStep.WELFARE_ACCOUNT, StepStatus.NOT_APPLICABLE, None, "")


def test_progress_counts_done_steps_out_of_those_that_apply() -> None:
    person = a_person()
    entries = {
        (person.id, ChecklistStep.SMARTPHONE): ChecklistEntry(status="done"),
        (person.id, ChecklistStep.VNEID_LEVEL2): ChecklistEntry(status="not_applicable"),
        (person.id, ChecklistStep.ANTI_FRAUD_BRIEFING): ChecklistEntry(status="refused"),
    }
    progress = progress_of(person, entries)
    assert (progress.done, progress.applicable) == (1, 7)


def test_a_visit_with_a_step_not_done_and_no_reason_stores_nothing(
    community_app: Flask, community_client: FlaskClient
) -> None:
    _member, _village, household_id, person_id = team_with_household(
        community_app, community_client
    )
    form = visit_form(
        person_id,
        {
            ChecklistStep.SMARTPHONE: ("done", "seen_on_phone", ""),
            ChecklistStep.VNEID_LEVEL2: ("not_done", "self_reported", ""),
        },
    )
    response = community_client.post(f"/quan-ly/ho/{household_id}/tham", data=form)
    assert response.status_code == 422
    assert "Vui lòng ghi lý do" in response.get_data(as_text=True)
    assert entry_of(community_app, person_id, ChecklistStep.SMARTPHONE) is None


# --- The system's ticks -------------------------------------------------------------------------


def test_tick_from_system_does_nothing_for_a_citizen_no_person_is_linked_to(
    community_app: Flask,
) -> None:
    citizen = make_citizen(community_app)
    now = dt.datetime.now(dt.UTC)
    with app_session(community_app) as session:
        tick_from_system(
            session,
            citizen_id=citizen.id,
            step=ChecklistStep.FIRST_MONEY_IN,
            on_date=now.date(),
            now=now,
        )
        assert not session.new and not session.dirty


def test_tick_from_system_refuses_a_step_the_system_cannot_see(community_app: Flask) -> None:
    now = dt.datetime.now(dt.UTC)
    with app_session(community_app) as session, pytest.raises(ValueError, match="does not see"):
        tick_from_system(
            session, citizen_id=1, step=ChecklistStep.SMARTPHONE, on_date=now.date(), now=now
        )


def test_tick_from_system_is_idempotent_and_keeps_the_earliest_date(
    community_app: Flask, community_client: FlaskClient
) -> None:
    citizen = make_citizen(community_app, date_of_birth=dt.date(1962, 4, 12))
    _member, _village, _household, person_id = team_with_household(
        community_app, community_client, citizen_id=citizen_number(community_app, citizen)
    )
    now = dt.datetime.now(dt.UTC)
    days = [dt.date(2026, 5, 10), dt.date(2026, 5, 10), dt.date(2026, 5, 3), dt.date(2026, 6, 1)]
    for day in days:
        with app_session(community_app) as session:
            tick_from_system(
                session,
                citizen_id=citizen.id,
                step=ChecklistStep.FIRST_CASHLESS_PAYMENT,
                on_date=day,
                now=now,
            )
            session.commit()
    entry = entry_of(community_app, person_id, ChecklistStep.FIRST_CASHLESS_PAYMENT)
    assert entry is not None
    assert (entry.status, entry.evidence, entry.on_date) == ("done", "system", dt.date(2026, 5, 3))
    assert entry.version == 2  # created, then moved to the earlier day; nothing else changed it
    assert count(community_app, ChecklistEntry, ChecklistEntry.person_id == person_id) == 3


def test_the_system_replaces_a_persons_answer_for_a_step_it_sees(
    community_app: Flask, community_client: FlaskClient
) -> None:
    citizen = make_citizen(community_app, date_of_birth=dt.date(1962, 4, 12))
    _member, _village, household_id, person_id = team_with_household(
        community_app, community_client, citizen_id=citizen_number(community_app, citizen)
    )
    form = visit_form(
        person_id, {ChecklistStep.FIRST_MONEY_IN: ("not_done", "", "chưa có ai gửi tiền")}
    )
    assert community_client.post(f"/quan-ly/ho/{household_id}/tham", data=form).status_code == 302
    now = dt.datetime.now(dt.UTC)
    with app_session(community_app) as session:
        tick_from_system(
            session,
            citizen_id=citizen.id,
            step=ChecklistStep.FIRST_MONEY_IN,
            on_date=dt.date(2026, 5, 1),
            now=now,
        )
        session.commit()
    entry = entry_of(community_app, person_id, ChecklistStep.FIRST_MONEY_IN)
    assert entry is not None
    assert (entry.status, entry.evidence, entry.reason, entry.visit_id) == (
        "done",
        "system",
        "",
        None,
    )


def test_welfare_paid_to_the_account_makes_the_person_a_beneficiary(
    community_app: Flask, community_client: FlaskClient
) -> None:
    citizen = make_citizen(community_app, date_of_birth=dt.date(1962, 4, 12))
    _member, _village, _household, person_id = team_with_household(
        community_app, community_client, citizen_id=citizen_number(community_app, citizen)
    )
    now = dt.datetime.now(dt.UTC)
    with app_session(community_app) as session:
        tick_from_system(
            session,
            citizen_id=citizen.id,
            step=ChecklistStep.WELFARE_ACCOUNT,
            on_date=now.date(),
            now=now,
        )
        session.commit()
        person = session.get(Person, person_id)
        assert person is not None and person.welfare_beneficiary


def test_a_persons_answer_never_overwrites_a_step_the_system_confirmed(
    community_app: Flask, community_client: FlaskClient
) -> None:
    citizen = make_citizen(community_app, date_of_birth=dt.date(1962, 4, 12), verified=False)
    _member, _village, household_id, person_id = team_with_household(
        community_app, community_client, citizen_id=citizen_number(community_app, citizen)
    )
    before = entry_of(community_app, person_id, ChecklistStep.ACCOUNT_CREATED)
    assert before is not None and before.evidence == "system"
    # The page offers no field for it; a stale form sends one anyway.
    page = community_client.get(f"/quan-ly/ho/{household_id}/tham").get_data(as_text=True)
    assert f"{person_id}:account_created:status" not in page
    form = visit_form(
        person_id,
        {
            ChecklistStep.ACCOUNT_CREATED: ("not_done", "", "không nhớ"),
            ChecklistStep.SMARTPHONE: ("done", "seen_on_phone", ""),
        },
    )
    response = community_client.post(
        f"/quan-ly/ho/{household_id}/tham", data=form, follow_redirects=True
    )
    assert "không thay đổi bước đã được hệ thống xác nhận" in response.get_data(as_text=True)
    after = entry_of(community_app, person_id, ChecklistStep.ACCOUNT_CREATED)
    assert after is not None
    assert (after.status, after.evidence, after.version) == ("done", "system", before.version)
    smartphone = entry_of(community_app, person_id, ChecklistStep.SMARTPHONE)
    assert smartphone is not None and smartphone.evidence == "seen_on_phone"


def test_a_late_older_visit_does_not_undo_a_newer_answer(
    community_app: Flask, community_client: FlaskClient
) -> None:
    _member, _village, household_id, person_id = team_with_household(
        community_app, community_client
    )
    now = dt.datetime.now(dt.UTC)
    path = f"/quan-ly/ho/{household_id}/tham"
    newer = visit_form(
        person_id,
        {ChecklistStep.ANTI_FRAUD_BRIEFING: ("done", "self_reported", "")},
        visited_at=now - dt.timedelta(hours=1),
    )
    assert community_client.post(path, data=newer).status_code == 302
    # The older visit waited on a phone without network and arrives now.
    older = visit_form(
        person_id,
        {
            ChecklistStep.ANTI_FRAUD_BRIEFING: ("not_done", "", "hẹn hôm khác"),
            ChecklistStep.SMARTPHONE: ("done", "seen_on_phone", ""),
        },
        visited_at=now - dt.timedelta(days=3),
    )
    response = community_client.post(path, data=older, follow_redirects=True)
    assert "giữ câu trả lời mới hơn" in response.get_data(as_text=True)
    briefing = entry_of(community_app, person_id, ChecklistStep.ANTI_FRAUD_BRIEFING)
    assert briefing is not None
    assert (briefing.status, str(briefing.visit_id)) == ("done", newer["visit_id"])
    # The older visit's other answers are kept: nothing newer answered them.
    smartphone = entry_of(community_app, person_id, ChecklistStep.SMARTPHONE)
    assert smartphone is not None and str(smartphone.visit_id) == older["visit_id"]

    # A still newer visit does change the answer, and the version counts the change.
    newest = visit_form(
        person_id,
        {ChecklistStep.ANTI_FRAUD_BRIEFING: ("refused", "", "không muốn nghe")},
        visited_at=now,
    )
    assert community_client.post(path, data=newest).status_code == 302
    briefing = entry_of(community_app, person_id, ChecklistStep.ANTI_FRAUD_BRIEFING)
    assert briefing is not None
    assert (briefing.status, briefing.reason, briefing.version) == (
        "refused",
        "không muốn nghe",
        2,
    )


def test_a_step_done_again_keeps_the_day_it_was_first_done(
    community_app: Flask, community_client: FlaskClient
) -> None:
    _member, _village, household_id, person_id = team_with_household(
        community_app, community_client
    )
    now = dt.datetime.now(dt.UTC)
    path = f"/quan-ly/ho/{household_id}/tham"
    for days_ago in (5, 0):
        form = visit_form(
            person_id,
            {ChecklistStep.SMARTPHONE: ("done", "seen_on_phone", "")},
            visited_at=now - dt.timedelta(days=days_ago),
        )
        assert community_client.post(path, data=form).status_code == 302
    entry = entry_of(community_app, person_id, ChecklistStep.SMARTPHONE)
    assert entry is not None
    assert (
        entry.on_date
        == (now - dt.timedelta(days=5)).astimezone(dt.timezone(dt.timedelta(hours=7))).date()
    )


def test_an_older_visit_sent_late_that_saw_the_step_done_moves_its_day_earlier(
    community_app: Flask, community_client: FlaskClient
) -> None:
    _member, _village, household_id, person_id = team_with_household(
        community_app, community_client
    )
    now = dt.datetime.now(dt.UTC)
    path = f"/quan-ly/ho/{household_id}/tham"
    newer = visit_form(
        person_id, {ChecklistStep.SMARTPHONE: ("done", "seen_on_phone", "")}, visited_at=now
    )
    older = visit_form(
        person_id,
        {ChecklistStep.SMARTPHONE: ("done", "self_reported", "")},
        visited_at=now - dt.timedelta(days=10),
    )
    for form in (newer, older):
        assert community_client.post(path, data=form).status_code == 302
    entry = entry_of(community_app, person_id, ChecklistStep.SMARTPHONE)
    assert entry is not None
    # The newer visit's answer stays (seen on the phone); the day is the older one.
    assert (entry.evidence, str(entry.visit_id)) == ("seen_on_phone", newer["visit_id"])
    assert (
        entry.on_date
        == (now - dt.timedelta(days=10)).astimezone(dt.timezone(dt.timedelta(hours=7))).date()
    )
