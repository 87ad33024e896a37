"""Door-to-door visits: a team member records a visit to a household and the checklist answers
of its members, from a phone that often has no network.

The visit's id is made before the visit is sent (when the form is drawn, or by the page's script
for a draft), so a visit kept on the phone and sent again when the network comes back is
recognised: the same id with the same content is the visit already stored (nothing is added),
the same id with other content is refused and changes nothing. The content is compared by a
SHA-256 of the fields as submitted, so a visit sent again is recognised even if a rule it met
then (its age, say) no longer holds. An older visit sent late never undoes a newer answer
(`kiosk.community.checklist.record_answers`). Operations flush and never commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiosk.community.checklist import (
    Answer,
    AnswerInvalid,
    Outcome,
    lock_persons,
    make_answer,
    record_answers,
    steps_for,
)
from kiosk.community.households import members_of, parse_form_id
from kiosk.community.models import (
    ChecklistStep,
    Evidence,
    Household,
    Official,
    Person,
    StepStatus,
    Visit,
)
from kiosk.formatting import LOCAL_ZONE

VISIT_ID_FIELD = "visit_id"
VISITED_AT_FIELD = "visited_at"
NOTE_FIELD = "note"
NOTE_LENGTH_MAX_CHARS = 500
# A phone may keep a visit for weeks before it finds a network; older than this is a mistake.
VISIT_AGE_MAX_DAYS = 60
# Phones' clocks run a little ahead; a visit further in the future than this is refused.
VISIT_CLOCK_AHEAD_MAX_S = 15 * 60
VISITS_LISTED_MAX = 20
# The form's answer fields are "<person id>:<step>:<part>".
ANSWER_PARTS = ("status", "evidence", "reason")


class VisitRefused(Exception):
    """A visit that cannot be stored; ``errors`` maps form fields to what is wrong."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = dict(errors)


class VisitInvalid(VisitRefused):
    """One or more fields are missing or wrong."""


class VisitIdConflict(VisitRefused):
    """The visit's id was stored before with other content: nothing was changed."""

    def __init__(self) -> None:
        super().__init__(
            {
                "form": _(
                    "Chuyến thăm này đã được gửi trước đó với nội dung khác, nên không lưu lần "
                    "gửi này. Hãy mở lại trang hộ và ghi một chuyến thăm mới."
                )
            }
        )


def answer_field(person_id: uuid.UUID, step: ChecklistStep, part: str) -> str:
    return f"{person_id}:{step.value}:{part}"


def new_visit_id() -> uuid.UUID:
    return uuid.uuid4()


@dataclass
class VisitResult:
    visit: Visit
    # False when the visit had been stored before (a resubmission): nothing changed this time.
    created: bool
    outcomes: dict[tuple[uuid.UUID, ChecklistStep], Outcome] = field(default_factory=dict)

    def kept(self, outcome: Outcome) -> list[tuple[uuid.UUID, ChecklistStep]]:
        return [key for key, found in self.outcomes.items() if found is outcome]


def content_hash(form: Mapping[str, str], *, household_id: uuid.UUID, official_id: int) -> bytes:
    """SHA-256 over the visit's fields as submitted (the visit id, time, note and every answer
    field), its household and who sent it."""
    # The parts of the steps answered: a step left "not asked" is no part of the visit, whatever
    # its other fields hold.
    answered = {
        key.rsplit(":", 1)[0]
        for key, value in form.items()
        if key.count(":") == 2 and key.endswith(":status") and value != ""
    }
    answers = sorted(
        (key, value)
        for key, value in form.items()
        if key.count(":") == 2
        and key.rsplit(":", 1)[0] in answered
        and key.rsplit(":", 1)[1] in ANSWER_PARTS
        and value != ""
    )
    content = {
        "household": str(household_id),
        "official": official_id,
        "visit": form.get(VISIT_ID_FIELD, "").strip(),
        "visited_at": form.get(VISITED_AT_FIELD, "").strip(),
        "note": form.get(NOTE_FIELD, ""),
        "answers": answers,
    }
    encoded = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).digest()


def submit_visit(
    session: Session,
    household: Household,
    form: Mapping[str, str],
    *,
    official: Official,
    now: dt.datetime,
) -> VisitResult:
    """Store the visit and apply its answers, or recognise it as one stored before.

    Raises `VisitInvalid` (nothing stored) or `VisitIdConflict` (the id was used for other
    content; nothing changed).
    """
    visit_id = parse_form_id(form.get(VISIT_ID_FIELD, ""))
    if visit_id is None:
        raise VisitInvalid({"form": _("Biểu mẫu bị thiếu mã chuyến thăm. Hãy mở lại trang.")})
    digest = content_hash(form, household_id=household.id, official_id=official.id)
    stored = session.get(Visit, visit_id)
    if stored is not None:
        return _already_stored(stored, household, official, digest)
    # Locked before reading the answers they are compared with: see checklist.py.
    members = lock_persons(session, [person.id for person in members_of(session, household.id)])
    visited_at, note, answers = _parse(form, members, now)
    visit = Visit(
        id=visit_id,
        household_id=household.id,
        commune_code=household.commune_code,
        official_id=official.id,
        visited_at=visited_at,
        received_at=now,
        note=note,
        content_hash=digest,
    )
    try:
        with session.begin_nested():
            session.add(visit)
            session.flush()
    except IntegrityError:
        # The same visit arrived twice at once (the phone sent it again while the first was on
        # its way): the first one stored wins.
        stored = session.get(Visit, visit_id)
        if stored is None:
            raise
        return _already_stored(stored, household, official, digest)
    outcomes = record_answers(
        session, answers, visit=visit, recorded_by=official.principal, now=now
    )
    return VisitResult(visit=visit, created=True, outcomes=outcomes)


def _already_stored(
    stored: Visit, household: Household, official: Official, digest: bytes
) -> VisitResult:
    if (stored.household_id, stored.official_id, bytes(stored.content_hash)) != (
        household.id,
        official.id,
        digest,
    ):
        raise VisitIdConflict
    return VisitResult(visit=stored, created=False)


def _parse(
    form: Mapping[str, str], members: list[Person], now: dt.datetime
) -> tuple[dt.datetime, str, list[Answer]]:
    errors: dict[str, str] = {}
    visited_at = _visited_at(form.get(VISITED_AT_FIELD, ""), now, errors)
    note = " ".join(form.get(NOTE_FIELD, "").split())
    if len(note) > NOTE_LENGTH_MAX_CHARS:
        errors[NOTE_FIELD] = _("Ghi chú dài tối đa %(max)d ký tự.", max=NOTE_LENGTH_MAX_CHARS)
    answers: list[Answer] = []
    for person in members:
        for step in steps_for(person):
            answer = _answer(form, person, step, errors)
            if answer is not None:
                answers.append(answer)
    if errors or visited_at is None:
        raise VisitInvalid(errors)
    return visited_at, note, answers


def _visited_at(raw: str, now: dt.datetime, errors: dict[str, str]) -> dt.datetime | None:
    """The time of the visit from a datetime-local field ("2026-11-23T09:30", Vietnam time)."""
    try:
        parsed = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        errors[VISITED_AT_FIELD] = _("Vui lòng nhập ngày và giờ đến thăm.")
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LOCAL_ZONE)
    visited_at = parsed.astimezone(dt.UTC)
    if visited_at > now + dt.timedelta(seconds=VISIT_CLOCK_AHEAD_MAX_S):
        errors[VISITED_AT_FIELD] = _("Giờ đến thăm không thể ở tương lai. Kiểm tra đồng hồ máy.")
        return None
    if visited_at < now - dt.timedelta(days=VISIT_AGE_MAX_DAYS):
        errors[VISITED_AT_FIELD] = _(
            "Chỉ ghi được chuyến thăm trong %(days)d ngày gần đây.", days=VISIT_AGE_MAX_DAYS
        )
        return None
    return visited_at


def _answer(
    form: Mapping[str, str], person: Person, step: ChecklistStep, errors: dict[str, str]
) -> Answer | None:
    raw_status = form.get(answer_field(person.id, step, "status"), "")
    if not raw_status:
        return None  # not asked on this visit
    status_field = answer_field(person.id, step, "status")
    try:
        status = StepStatus(raw_status)
    except ValueError:
        errors[status_field] = _("Trạng thái không hợp lệ.")
        return None
    raw_evidence = form.get(answer_field(person.id, step, "evidence"), "")
    evidence = Evidence(raw_evidence) if raw_evidence in set(Evidence) else None
    reason = form.get(answer_field(person.id, step, "reason"), "")
    try:
        return make_answer(person, step, status, evidence, reason)
    except AnswerInvalid as invalid:
        part = "reason" if status in {StepStatus.NOT_DONE, StepStatus.REFUSED} else "evidence"
        errors[answer_field(person.id, step, part)] = f"{person.full_name}: {invalid.message}"
        return None


@dataclass(frozen=True)
class VisitRow:
    visit: Visit
    official_name: str


def visits_of_household(session: Session, household_id: uuid.UUID) -> list[VisitRow]:
    """The household's latest visits, newest first."""
    rows = session.execute(
        select(Visit, Official.full_name)
        .join(Official, Official.id == Visit.official_id)
        .where(Visit.household_id == household_id)
        .order_by(Visit.visited_at.desc(), Visit.id)
        .limit(VISITS_LISTED_MAX)
    ).all()
    return [VisitRow(visit, name) for visit, name in rows]


def local_input_value(moment: dt.datetime) -> str:
    """A time as a datetime-local field shows it ("2026-11-23T09:30", Vietnam time)."""
    return moment.astimezone(LOCAL_ZONE).strftime("%Y-%m-%dT%H:%M")
