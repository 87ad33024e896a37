"""Demo data for welfare: a funded programme in commune 00226 with one paid cycle — two demo
citizens paid into their wallets, one person without an account given a cash voucher.

Made with the real operations (upload, four-eyes approval), so the demo shows what officials
see. Safe to run twice: the programme is found by name and nothing is redone. Needs the demo
citizens of `kiosk.demo` (run after it) and an app context (the ID lookup key).
"""

from __future__ import annotations

import datetime as dt
import uuid

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.welfare import cycles
from kiosk.welfare.models import WelfareProgramme
from kiosk.welfare.upload import Column, RawRow

DEMO_COMMUNE = "00226"
DEMO_PROGRAMME = "Trợ cấp xã hội hằng tháng (demo)"
DEMO_CYCLE = "Tháng 11/2026 (demo)"
DEMO_UPLOADER = "demo:can-bo-lap"
DEMO_APPROVER = "demo:can-bo-duyet"
# Two of kiosk.demo's citizens (verified, in 00226), and a person with no account: a voucher.
DEMO_BENEFICIARIES = [
    ("001158012345", "Hoàng Thị Mai", 500_000, "0912345678"),
    ("001076054321", "Nông Văn Bình", 500_000, ""),
    ("001145098765", "Đinh Thị Lan", 500_000, ""),
]
DEMO_FUNDING_REQUEST = uuid.UUID("5f1e0b7c-6a0d-4a53-9d1e-2f7b9c3a0001")


def seed_demo(session: Session, now: dt.datetime) -> WelfareProgramme:
    """Create (once) the demo programme, fund it, and upload, approve and pay one cycle."""
    existing = session.scalar(
        select(WelfareProgramme).where(
            WelfareProgramme.commune_code == DEMO_COMMUNE, WelfareProgramme.name == DEMO_PROGRAMME
        )
    )
    if existing is not None:
        return existing
    programme = cycles.create_programme(
        session, commune_code=DEMO_COMMUNE, name=DEMO_PROGRAMME, by=DEMO_UPLOADER, now=now
    )
    total = sum(amount for _id, _name, amount, _phone in DEMO_BENEFICIARIES)
    cycles.record_funding(
        session,
        programme,
        amount=total,
        reference="Lệnh chi 01/2026 (demo)",
        request_id=DEMO_FUNDING_REQUEST,
        now=now,
    )
    cycle = cycles.create_cycle(
        session,
        programme,
        label=DEMO_CYCLE,
        voucher_validity_days=cycles.DEFAULT_VOUCHER_VALIDITY_DAYS,
        by=DEMO_UPLOADER,
        now=now,
    )
    rows = [
        RawRow(
            line,
            {
                Column.CITIZEN_ID: number,
                Column.FULL_NAME: name,
                Column.AMOUNT: str(amount),
                Column.PHONE: phone,
            },
        )
        for line, (number, name, amount, phone) in enumerate(DEMO_BENEFICIARIES, start=2)
    ]
    result = cycles.upload_list(
        session,
        cycle,
        rows,
        denomination_vnd=current_app.config["WITHDRAWAL_DENOMINATION_VND"],
        by=DEMO_UPLOADER,
        now=now,
    )
    assert result.accepted, (result.problems, result.total_problem)
    cycles.submit_cycle(session, cycle, by=DEMO_UPLOADER, now=now)
    cycles.approve_cycle(
        session,
        cycle.id,
        by=DEMO_APPROVER,
        wallet_balance_max_vnd=current_app.config["WALLET_BALANCE_MAX_VND"],
        now=now,
    )
    return programme
