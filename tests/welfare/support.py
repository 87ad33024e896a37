"""Test support for welfare: programmes with funded funds, people with and without accounts
(whose clear ID numbers the test keeps, as an official's file would), lists as CSV or Excel
bytes, and the cycle's operations run as the request would run them (one committed session).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from flask import Flask
from openpyxl import Workbook  # type: ignore[import-untyped]
from sqlalchemy import select

import ledger
from kiosk.citizens.models import Sex
from kiosk.keys import code_key_ring
from kiosk.payments.models import IssuedCode
from kiosk.welfare import cycles, upload, vouchers
from kiosk.welfare.models import BeneficiaryRow, PayCycle, WelfareProgramme
from tests.agent_portal.conftest import app_session, stored_row
from tests.kiosk.citizen_support import make_citizen, unique_citizen_id

COMMUNE_CODE = "00226"  # Phường Văn Miếu - Quốc Tử Giám
OTHER_COMMUNE_CODE = "00004"  # Phường Ba Đình, same province
UPLOADER = "official:1001"
APPROVER = "official:1002"
HEADER = ("Số CCCD", "Họ và tên", "Số tiền", "Số điện thoại")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Person:
    """Somebody on a list: the clear ID number (as in the official's file), and their account."""

    number: str
    full_name: str
    citizen_id: int | None = None
    wallet_account_id: int | None = None


def person_without_account(full_name: str = "Đinh Thị Lan") -> Person:
    return Person(unique_citizen_id(dt.date(1950, 3, 1), Sex.FEMALE), full_name)


def person_with_account(
    app: Flask,
    *,
    full_name: str = "Hoàng Thị Mai",
    commune_code: str = COMMUNE_CODE,
    verified: bool = True,
    balance_vnd: int = 0,
) -> Person:
    """A committed citizen whose ID number the test knows."""
    number = unique_citizen_id(dt.date(1958, 4, 12), Sex.FEMALE)
    citizen = make_citizen(
        app,
        balance_vnd=balance_vnd,
        verified=verified,
        full_name=full_name,
        commune_code=commune_code,
        citizen_id=number,
    )
    return Person(number, full_name, citizen.id, citizen.wallet_account_id)


def make_programme(app: Flask, *, commune_code: str = COMMUNE_CODE, fund: int = 0) -> int:
    with app_session(app) as session:
        programme = cycles.create_programme(
            session,
            commune_code=commune_code,
            name=f"Trợ cấp xã hội {secrets.token_hex(3)}",
            by=UPLOADER,
            now=utc_now(),
        )
        session.commit()
        programme_id = programme.id
    if fund:
        add_funds(app, programme_id, fund)
    return programme_id


def add_funds(app: Flask, programme_id: int, amount: int) -> None:
    with app_session(app) as session:
        programme = session.get(WelfareProgramme, programme_id)
        assert programme is not None
        cycles.record_funding(
            session,
            programme,
            amount=amount,
            reference="Lệnh chi 123",
            request_id=uuid.uuid4(),
            now=utc_now(),
        )
        session.commit()


def make_cycle(app: Flask, programme_id: int, *, days: int = 30) -> int:
    with app_session(app) as session:
        programme = session.get(WelfareProgramme, programme_id)
        assert programme is not None
        cycle = cycles.create_cycle(
            session,
            programme,
            label=f"Tháng {secrets.token_hex(2)}",
            voucher_validity_days=days,
            by=UPLOADER,
            now=utc_now(),
        )
        session.commit()
        return cycle.id


def csv_bytes(lines: Sequence[Sequence[object]], *, header: Sequence[str] = HEADER) -> bytes:
    """A list as Excel writes "CSV UTF-8": a BOM, commas, CRLF."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for line in [header, *lines]:
        writer.writerow([str(cell) for cell in line])
    return b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")


def xlsx_bytes(lines: Sequence[Sequence[object]], *, header: Sequence[str] = HEADER) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(header))
    for line in lines:
        sheet.append(list(line))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def line_of(person: Person, amount: int, phone: str = "") -> tuple[str, str, str, str]:
    return (person.number, person.full_name, str(amount), phone)


def upload_list(
    app: Flask, cycle_id: int, data: bytes, *, filename: str = "danh-sach.csv", by: str = UPLOADER
) -> cycles.UploadResult:
    with app.test_request_context(), app_session(app) as session:
        cycle = session.get(PayCycle, cycle_id)
        assert cycle is not None
        result = cycles.upload_list(
            session,
            cycle,
            upload.parse_list(filename, data),
            denomination_vnd=app.config["WITHDRAWAL_DENOMINATION_VND"],
            by=by,
            now=utc_now(),
        )
        session.commit()
        return result


def submit(app: Flask, cycle_id: int, *, by: str = UPLOADER) -> None:
    with app.test_request_context(), app_session(app) as session:
        cycle = session.get(PayCycle, cycle_id)
        assert cycle is not None
        cycles.submit_cycle(session, cycle, by=by, now=utc_now())
        session.commit()


def approve(
    app: Flask, cycle_id: int, *, by: str = APPROVER, now: dt.datetime | None = None
) -> cycles.Disbursement:
    with app.test_request_context(), app_session(app) as session:
        done = cycles.approve_cycle(
            session,
            cycle_id,
            by=by,
            wallet_balance_max_vnd=app.config["WALLET_BALANCE_MAX_VND"],
            now=now or utc_now(),
        )
        session.commit()
        return done


def paid_cycle(
    app: Flask,
    people: Sequence[tuple[Person, int]],
    *,
    days: int = 30,
    commune_code: str = COMMUNE_CODE,
) -> int:
    """A funded programme and a cycle listing ``people``, uploaded, sent and approved."""
    programme_id = make_programme(
        app, commune_code=commune_code, fund=sum(amount for _person, amount in people)
    )
    cycle_id = make_cycle(app, programme_id, days=days)
    result = upload_list(
        app, cycle_id, csv_bytes([line_of(person, amount) for person, amount in people])
    )
    assert result.accepted, (result.problems, result.total_problem)
    submit(app, cycle_id)
    approve(app, cycle_id)
    return cycle_id


def rows(app: Flask, cycle_id: int) -> list[BeneficiaryRow]:
    with app_session(app) as session:
        found = list(
            session.scalars(
                select(BeneficiaryRow)
                .where(BeneficiaryRow.cycle_id == cycle_id)
                .order_by(BeneficiaryRow.row_number)
            )
        )
        session.expunge_all()
        return found


def cycle_of(app: Flask, cycle_id: int) -> PayCycle:
    return stored_row(app, PayCycle, cycle_id)


def programme_of(app: Flask, cycle_id: int) -> WelfareProgramme:
    return stored_row(app, WelfareProgramme, cycle_of(app, cycle_id).programme_id)


def voucher_of_row(app: Flask, row_id: int) -> IssuedCode:
    with app_session(app) as session:
        record = session.scalar(select(IssuedCode).where(IssuedCode.welfare_row_id == row_id))
        assert record is not None
        session.expunge(record)
        return record


def fund_available(app: Flask, cycle_id: int) -> int:
    programme = programme_of(app, cycle_id)
    with app_session(app) as session:
        return ledger.balance(session, programme.fund_account_id).available


def voucher_token(app: Flask, *, commune_code: str = COMMUNE_CODE, amount: int = 500_000) -> str:
    """The QR text of a new cash voucher (a person without an account) of a programme of
    ``commune_code``."""
    cycle_id = paid_cycle(app, [(person_without_account(), amount)], commune_code=commune_code)
    [row] = rows(app, cycle_id)
    record = voucher_of_row(app, row.id)
    with app.app_context():
        return vouchers.sign_voucher(code_key_ring(), record)
