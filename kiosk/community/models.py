"""Officials and team members, the places below a commune, households, people, visits and the
onboarding checklist. Citizen ID numbers are kept only as an HMAC (to link a person to an account
or a welfare row) and their last 4 digits, never in clear."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledger.columns import BigIntegerPrimaryKey, UTCDateTime
from ledger.schema import Base


def known(column: str, values: type[enum.StrEnum]) -> str:
    listed = ", ".join(f"'{value.value}'" for value in values)
    return f"{column} IN ({listed})"


class OfficialRole(enum.StrEnum):
    # Community digital team member (tổ công nghệ số cộng đồng): own commune, assigned villages.
    TEAM_MEMBER = "team_member"
    # Commune official (cán bộ xã): own commune, welfare batches, targets and denominators.
    COMMUNE_OFFICIAL = "commune_official"
    # Province official: reads its communes' figures, changes nothing.
    PROVINCE_OFFICIAL = "province_official"
    # Everything, everywhere (the operator's staff).
    ADMIN = "admin"


class Official(Base):
    """A person who works for a commune or province: team members, officials, admins."""

    __tablename__ = "officials"
    __table_args__ = (
        CheckConstraint(known("role", OfficialRole), name="role_known"),
        # Team members and commune officials belong to one commune; province officials to one
        # province; admins to none.
        CheckConstraint(
            "(role IN ('team_member', 'commune_official')) = (commune_code IS NOT NULL)",
            name="commune_roles_have_commune",
        ),
        CheckConstraint(
            "(role = 'province_official') = (province_code IS NOT NULL)",
            name="province_role_has_province",
        ),
        CheckConstraint(
            "totp_enrolled_at IS NULL OR totp_secret_ciphertext IS NOT NULL",
            name="enrolled_has_secret",
        ),
    )

    id: Mapped[int] = mapped_column(BigIntegerPrimaryKey, primary_key=True)
    # Lower-case login name ("hoa.tran").
    username: Mapped[str] = mapped_column(String(40), unique=True)
    full_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    commune_code: Mapped[str | None] = mapped_column(ForeignKey("communes.code"), index=True)
    province_code: Mapped[str | None] = mapped_column(ForeignKey("provinces.code"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    password_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    totp_secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary(128))
    totp_enrolled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # "admin" (the command line) or "official:7" (a commune official's page).
    created_by: Mapped[str] = mapped_column(String(64))

    @property
    def principal(self) -> str:
        return f"official:{self.id}"


class Village(Base):
    """A village, hamlet or residential group (thôn, bản, tổ dân phố), entered by its commune."""

    __tablename__ = "villages"
    __table_args__ = (UniqueConstraint("commune_code", "name"),)

    id: Mapped[int] = mapped_column(BigIntegerPrimaryKey, primary_key=True)
    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"))
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))


class TeamAssignment(Base):
    """A team member's villages: where they register households and tick checklists."""

    __tablename__ = "team_assignments"

    official_id: Mapped[int] = mapped_column(ForeignKey("officials.id"), primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), primary_key=True)
    assigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    assigned_by: Mapped[str] = mapped_column(String(64))


class Household(Base):
    """A household (hộ gia đình) registered door to door. The id is made by the team member's
    phone, so a registration sent twice from a phone that lost its network is one household."""

    __tablename__ = "households"
    __table_args__ = (Index("ix_households_commune_village", "commune_code", "village_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"))
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    head_name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[int] = mapped_column(ForeignKey("officials.id"))


class Person(Base):
    """A member of a household, with their consent; linked to a citizen account when they have
    one here. The id is made on the phone, like a household's."""

    __tablename__ = "persons"
    __table_args__ = (
        CheckConstraint("sex IN ('male', 'female')", name="sex_known"),
        CheckConstraint(
            "citizen_id_last4 IS NULL OR length(citizen_id_last4) = 4", name="last4_four_digits"
        ),
        Index("ix_persons_commune_code", "commune_code"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"))
    full_name: Mapped[str] = mapped_column(String(100))
    # Older people often know only their year of birth: the full date when known, the year always.
    date_of_birth: Mapped[dt.date | None] = mapped_column(Date)
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    sex: Mapped[str] = mapped_column(String(6))
    # HMAC of the 12-digit ID (same key as citizens.citizen_id_lookup) and its last 4 digits.
    citizen_id_lookup: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    citizen_id_last4: Mapped[str | None] = mapped_column(String(4))
    # Receives social welfare (bảo trợ xã hội): the checklist has the welfare steps.
    welfare_beneficiary: Mapped[bool] = mapped_column(Boolean, default=False)
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), unique=True)
    consent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[int] = mapped_column(ForeignKey("officials.id"))


class Visit(Base):
    """One door-to-door visit to a household. The id comes from the team member's phone: a visit
    submitted again after the network dropped is recognised and stored once."""

    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_commune_visited_at", "commune_code", "visited_at"),
        Index("ix_visits_official_visited_at", "official_id", "visited_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"))
    official_id: Mapped[int] = mapped_column(ForeignKey("officials.id"))
    # When the visit happened (the phone's clock) and when the server received it.
    visited_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(String(500), default="")
    # SHA-256 of the submitted content: the same id with other content is refused, not merged.
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class ChecklistStep(enum.StrEnum):
    SMARTPHONE = "smartphone"  # has a smartphone, or regular access to one
    VNEID_LEVEL2 = "vneid_level2"  # VNeID level-2 electronic identity
    ACCOUNT_CREATED = "account_created"  # payment account, here or at a bank / e-wallet
    ACCOUNT_VERIFIED = "account_verified"  # verified in person
    WELFARE_ACCOUNT = "welfare_account"  # account registered for welfare payments
    FIRST_MONEY_IN = "first_money_in"  # first deposit or money received
    FIRST_CASHLESS_PAYMENT = "first_cashless_payment"
    ANTI_FRAUD_BRIEFING = "anti_fraud_briefing"
    FOLLOW_UP_30_DAYS = "follow_up_30_days"


class StepStatus(enum.StrEnum):
    DONE = "done"
    NOT_DONE = "not_done"
    NOT_APPLICABLE = "not_applicable"
    REFUSED = "refused"


class Evidence(enum.StrEnum):
    SELF_REPORTED = "self_reported"  # the person said so
    SEEN_ON_PHONE = "seen_on_phone"  # the team member saw it on the person's phone
    SYSTEM = "system"  # confirmed by the system, from the accounts and the ledger


class ChecklistEntry(Base):
    """The current state of one step of one person's checklist (one row per person and step).

    Rows with evidence "system" are written by the automatic ticks, not by people; a person's
    answer never overwrites a system-confirmed step.
    """

    __tablename__ = "checklist_entries"
    __table_args__ = (
        CheckConstraint(known("step", ChecklistStep), name="step_known"),
        CheckConstraint(known("status", StepStatus), name="status_known"),
        CheckConstraint(known("evidence", Evidence), name="evidence_known"),
        CheckConstraint(
            "status IN ('done', 'not_applicable') OR reason <> ''", name="not_done_has_reason"
        ),
        Index("ix_checklist_entries_commune_step", "commune_code", "step", "status"),
    )

    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    step: Mapped[str] = mapped_column(String(30), primary_key=True)
    commune_code: Mapped[str] = mapped_column(ForeignKey("communes.code"))
    status: Mapped[str] = mapped_column(String(16))
    evidence: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200), default="")
    # The day it happened (the visit's day, or the day the system saw it).
    on_date: Mapped[dt.date] = mapped_column(Date)
    # "official:7", or "system".
    recorded_by: Mapped[str] = mapped_column(String(64))
    visit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("visits.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Bumped on each change, so a late resubmission of an older visit does not undo a newer one.
    version: Mapped[int] = mapped_column(SmallInteger, default=1)
