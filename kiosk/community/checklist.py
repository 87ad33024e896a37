"""Each person's door-to-door onboarding checklist: the steps, the rules for an answer, recording
the answers of a visit, and the ticks the system makes itself.

One `ChecklistEntry` row holds the current state of one step of one person. Two kinds of writer:

- people, through a visit (`record_answers`): a team member ticks what the person said or what
  was seen on their phone. An answer never overwrites a step the system confirmed, and an answer
  from an older visit (sent late, after the phone found the network again) never undoes one from
  a newer visit.
- the system (`tick_from_system`): what the accounts and the ledger show happened (account
  created, verified, first money in, first cashless payment, welfare paid to the account) is
  ticked "done" with evidence "system", whatever a person said before; it keeps the earliest
  date and may be called any number of times.

Every writer first locks the person's row (on PostgreSQL), so a visit and an automatic tick of
the same person never interleave. Operations flush and never commit.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from flask_babel import gettext as _  # type: ignore[import-untyped]
from flask_babel import lazy_gettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.citizens.models import Citizen
from kiosk.community.models import (
    ChecklistEntry,
    ChecklistStep,
    Evidence,
    Person,
    StepStatus,
    Visit,
)
from kiosk.formatting import local_today

SYSTEM = "system"
REASON_LENGTH_MAX_CHARS = 200

# What the system sees happen, and ticks itself.
SYSTEM_STEPS = frozenset(
    {
        ChecklistStep.ACCOUNT_CREATED,
        ChecklistStep.ACCOUNT_VERIFIED,
        ChecklistStep.WELFARE_ACCOUNT,
        ChecklistStep.FIRST_MONEY_IN,
        ChecklistStep.FIRST_CASHLESS_PAYMENT,
    }
)
# The evidence a team member may give; "system" is the system's alone.
PEOPLE_EVIDENCE = (Evidence.SELF_REPORTED, Evidence.SEEN_ON_PHONE)
STATUSES_NEEDING_REASON = frozenset({StepStatus.NOT_DONE, StepStatus.REFUSED})

STEP_LABELS = {
    ChecklistStep.SMARTPHONE: lazy_gettext("Có điện thoại thông minh (của mình hoặc dùng chung)"),
    ChecklistStep.VNEID_LEVEL2: lazy_gettext("Có định danh điện tử VNeID mức 2"),
    ChecklistStep.ACCOUNT_CREATED: lazy_gettext(
        "Đã mở tài khoản thanh toán (ở đây, ngân hàng hoặc ví điện tử)"
    ),
    ChecklistStep.ACCOUNT_VERIFIED: lazy_gettext("Tài khoản đã được xác minh trực tiếp"),
    ChecklistStep.WELFARE_ACCOUNT: lazy_gettext("Đã đăng ký tài khoản nhận trợ cấp xã hội"),
    ChecklistStep.FIRST_MONEY_IN: lazy_gettext("Lần đầu nạp hoặc nhận tiền vào tài khoản"),
    ChecklistStep.FIRST_CASHLESS_PAYMENT: lazy_gettext("Lần đầu thanh toán không dùng tiền mặt"),
    ChecklistStep.ANTI_FRAUD_BRIEFING: lazy_gettext("Đã được hướng dẫn phòng chống lừa đảo"),
    ChecklistStep.FOLLOW_UP_30_DAYS: lazy_gettext("Đã thăm lại sau 30 ngày"),
}
STATUS_LABELS = {
    StepStatus.DONE: lazy_gettext("Đã xong"),
    StepStatus.NOT_DONE: lazy_gettext("Chưa xong"),
    StepStatus.NOT_APPLICABLE: lazy_gettext("Không áp dụng"),
    StepStatus.REFUSED: lazy_gettext("Từ chối"),
}
EVIDENCE_LABELS = {
    Evidence.SELF_REPORTED: lazy_gettext("Người dân tự nói"),
    Evidence.SEEN_ON_PHONE: lazy_gettext("Đã xem trên điện thoại"),
    Evidence.SYSTEM: lazy_gettext("Hệ thống xác nhận"),
}


class AnswerInvalid(ValueError):
    """An answer that breaks a rule; ``message`` says what to fix, in Vietnamese."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Outcome(enum.StrEnum):
    """What became of one answer of a visit."""

    APPLIED = "applied"
    # The step was already in that state.
    UNCHANGED = "unchanged"
    # The system had confirmed the step: a person's answer does not change it.
    KEPT_SYSTEM = "kept_system"
    # A newer visit had answered the step: this older one does not undo it.
    KEPT_NEWER = "kept_newer"


@dataclass(frozen=True)
class Answer:
    person_id: uuid.UUID
    step: ChecklistStep
    status: StepStatus
    evidence: Evidence
    reason: str


def steps_for(person: Person) -> tuple[ChecklistStep, ...]:
    """The steps of the person's checklist: the welfare step only for welfare beneficiaries."""
    return tuple(
        step
        for step in ChecklistStep
        if person.welfare_beneficiary or step is not ChecklistStep.WELFARE_ACCOUNT
    )


def make_answer(
    person: Person,
    step: ChecklistStep,
    status: StepStatus,
    evidence: Evidence | None,
    reason: str,
) -> Answer:
    """A team member's answer for one step, checked; raise `AnswerInvalid` saying what to fix."""
    if step not in steps_for(person):
        raise AnswerInvalid(_("Bước này chỉ dành cho người hưởng trợ cấp xã hội."))
    reason = " ".join(reason.split())
    if len(reason) > REASON_LENGTH_MAX_CHARS:
        raise AnswerInvalid(_("Lý do dài tối đa %(max)d ký tự.", max=REASON_LENGTH_MAX_CHARS))
    if status in STATUSES_NEEDING_REASON and not reason:
        raise AnswerInvalid(_("Vui lòng ghi lý do khi bước chưa xong hoặc người dân từ chối."))
    if status is StepStatus.DONE:
        if evidence is None:
            raise AnswerInvalid(
                _("Vui lòng chọn bằng chứng: người dân tự nói, hay đã xem trên điện thoại.")
            )
        if evidence not in PEOPLE_EVIDENCE:
            raise AnswerInvalid(_("Chỉ hệ thống mới ghi được bằng chứng “hệ thống xác nhận”."))
    else:
        # Nothing was seen for a step that is not done: what is stored is what was said.
        evidence = Evidence.SELF_REPORTED
    return Answer(person.id, step, status, evidence, reason)


# --- Reading ------------------------------------------------------------------------------------


def entries_of(
    session: Session, person_ids: Iterable[uuid.UUID]
) -> dict[tuple[uuid.UUID, ChecklistStep], ChecklistEntry]:
    """The current entries of these persons (a household's, at most), by person and step."""
    ids = list(person_ids)
    if not ids:
        return {}
    rows = session.scalars(select(ChecklistEntry).where(ChecklistEntry.person_id.in_(ids)))
    return {(entry.person_id, ChecklistStep(entry.step)): entry for entry in rows}


@dataclass(frozen=True)
class Progress:
    done: int
    applicable: int


def progress_of(
    person: Person, entries: Mapping[tuple[uuid.UUID, ChecklistStep], ChecklistEntry]
) -> Progress:
    """Steps done out of the steps that apply (a step answered "not applicable" does not)."""
    done = applicable = 0
    for step in steps_for(person):
        entry = entries.get((person.id, step))
        if entry is not None and entry.status == StepStatus.NOT_APPLICABLE:
            continue
        applicable += 1
        done += entry is not None and entry.status == StepStatus.DONE
    return Progress(done=done, applicable=applicable)


def lock_persons(session: Session, person_ids: Sequence[uuid.UUID]) -> list[Person]:
    """Load and lock the persons (PostgreSQL: FOR UPDATE, in id order so two writers never
    deadlock on a household; SQLite serialises writers anyway)."""
    if not person_ids:
        return []
    return list(
        session.scalars(
            select(Person)
            .where(Person.id.in_(list(person_ids)))
            .order_by(Person.id)
            .with_for_update()
        )
    )


# --- Answers from a visit -----------------------------------------------------------------------


def record_answers(
    session: Session,
    answers: Sequence[Answer],
    *,
    visit: Visit,
    recorded_by: str,
    now: dt.datetime,
) -> dict[tuple[uuid.UUID, ChecklistStep], Outcome]:
    """Apply a visit's answers (the caller has locked the persons) and say what became of each."""
    person_ids = sorted({answer.person_id for answer in answers})
    current = entries_of(session, person_ids)
    answered_at = _answer_times(session, current.values())
    visited_on = local_today(visit.visited_at)
    outcomes: dict[tuple[uuid.UUID, ChecklistStep], Outcome] = {}
    for answer in answers:
        key = (answer.person_id, answer.step)
        entry = current.get(key)
        if entry is None:
            entry = ChecklistEntry(
                person_id=answer.person_id,
                step=answer.step.value,
                commune_code=visit.commune_code,
                status=answer.status.value,
                evidence=answer.evidence.value,
                reason=answer.reason,
                on_date=visited_on,
                recorded_by=recorded_by,
                visit_id=visit.id,
                recorded_at=now,
                version=1,
            )
            session.add(entry)
            current[key] = entry
            answered_at[key] = visit.visited_at
            outcomes[key] = Outcome.APPLIED
            continue
        if entry.evidence == Evidence.SYSTEM:
            outcomes[key] = Outcome.KEPT_SYSTEM
            continue
        previous = answered_at.get(key)
        if previous is not None and previous > visit.visited_at:
            both_done = entry.status == answer.status == StepStatus.DONE
            if both_done and visited_on < entry.on_date:
                # Done then too: the step was done earlier than the newer visit knew.
                entry.on_date = visited_on
                entry.version += 1
            outcomes[key] = Outcome.KEPT_NEWER
            continue
        same = (entry.status, entry.evidence, entry.reason) == (
            answer.status.value,
            answer.evidence.value,
            answer.reason,
        )
        # A step done stays done on the day it was first seen done; the newer visit is kept as
        # the one that last answered, so an older one sent late still gives way.
        if not (same and entry.status == StepStatus.DONE):
            entry.on_date = visited_on
        entry.status = answer.status.value
        entry.evidence = answer.evidence.value
        entry.reason = answer.reason
        entry.recorded_by = recorded_by
        entry.visit_id = visit.id
        entry.recorded_at = now
        entry.version += 1
        answered_at[key] = visit.visited_at
        outcomes[key] = Outcome.UNCHANGED if same else Outcome.APPLIED
    session.flush()
    return outcomes


def _answer_times(
    session: Session, entries: Iterable[ChecklistEntry]
) -> dict[tuple[uuid.UUID, ChecklistStep], dt.datetime]:
    """When each entry's answer was given: the time of the visit that gave it."""
    by_visit: dict[uuid.UUID, list[tuple[uuid.UUID, ChecklistStep]]] = {}
    for entry in entries:
        if entry.visit_id is not None:
            by_visit.setdefault(entry.visit_id, []).append(
                (entry.person_id, ChecklistStep(entry.step))
            )
    if not by_visit:
        return {}
    times = session.execute(
        select(Visit.id, Visit.visited_at).where(Visit.id.in_(list(by_visit)))
    ).all()
    return {key: visited_at for visit_id, visited_at in times for key in by_visit[visit_id]}


# --- What the system sees -----------------------------------------------------------------------


def tick_from_system(
    session: Session,
    *,
    citizen_id: int,
    step: ChecklistStep,
    on_date: dt.date,
    now: dt.datetime,
) -> None:
    """Tick ``step`` done, evidence "system", for the person linked to the citizen.

    Nothing happens when no person is linked to that citizen. Calling it again changes nothing,
    except an earlier ``on_date``, which replaces a later one. A person's answer for the step is
    replaced: the system's word is the stronger evidence. Welfare paid into the account makes the
    person a welfare beneficiary, if they were not marked as one.
    """
    if step not in SYSTEM_STEPS:
        raise ValueError(f"the system does not see step {step!r}")
    person = session.scalar(select(Person).where(Person.citizen_id == citizen_id).with_for_update())
    if person is None:
        return
    _tick(session, person, step, on_date, now)


def _tick(
    session: Session, person: Person, step: ChecklistStep, on_date: dt.date, now: dt.datetime
) -> None:
    if step is ChecklistStep.WELFARE_ACCOUNT and not person.welfare_beneficiary:
        person.welfare_beneficiary = True
    entry = session.get(ChecklistEntry, (person.id, step.value))
    if entry is None:
        session.add(
            ChecklistEntry(
                person_id=person.id,
                step=step.value,
                commune_code=person.commune_code,
                status=StepStatus.DONE.value,
                evidence=Evidence.SYSTEM.value,
                reason="",
                on_date=on_date,
                recorded_by=SYSTEM,
                visit_id=None,
                recorded_at=now,
                version=1,
            )
        )
    elif entry.evidence == Evidence.SYSTEM:
        if on_date >= entry.on_date:
            return
        entry.on_date = on_date
        entry.recorded_at = now
        entry.version += 1
    else:
        entry.status = StepStatus.DONE.value
        entry.evidence = Evidence.SYSTEM.value
        entry.reason = ""
        entry.on_date = on_date
        entry.recorded_by = SYSTEM
        entry.visit_id = None
        entry.recorded_at = now
        entry.version += 1
    session.flush()


def link_person_to_citizen(
    session: Session, person: Person, citizen: Citizen, now: dt.datetime
) -> None:
    """Link the person to the citizen's account and tick at once what the account shows."""
    person.citizen_id = citizen.id
    session.flush()
    tick_from_citizen(session, person, citizen, now)


def tick_from_citizen(session: Session, person: Person, citizen: Citizen, now: dt.datetime) -> None:
    """Tick the steps the citizen's account shows done so far (account created, verified, first
    money in, first cashless payment)."""
    _tick(session, person, ChecklistStep.ACCOUNT_CREATED, local_today(citizen.created_at), now)
    if citizen.verified_at is not None:
        _tick(
            session, person, ChecklistStep.ACCOUNT_VERIFIED, local_today(citizen.verified_at), now
        )
    first_money_in_on, first_payment_on = _milestones(session, citizen.id)
    if first_money_in_on is not None:
        _tick(session, person, ChecklistStep.FIRST_MONEY_IN, first_money_in_on, now)
    if first_payment_on is not None:
        _tick(session, person, ChecklistStep.FIRST_CASHLESS_PAYMENT, first_payment_on, now)


def _milestones(session: Session, citizen_id: int) -> tuple[dt.date | None, dt.date | None]:
    # The adoption roll-up knows each citizen's first money in and first payment without
    # scanning the ledger (None before its first look at the citizen: it ticks them itself then).
    # Imported here: the roll-up imports this module to tick the steps it sees.
    from kiosk.adoption.rollup import milestones_of  # noqa: PLC0415

    milestones = milestones_of(session, citizen_id)
    if milestones is None:
        return None, None
    return milestones.first_money_in_on, milestones.first_payment_on
