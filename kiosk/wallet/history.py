"""A wallet's history and receipts, read from the ledger and told in the citizen's words.

This module owns the reads behind the history and receipt pages: one page of statement lines
(from `ledger.statement`, or from the same query with the page's filters pushed into SQL), and
what each line means to the citizen — its kind, whether money is held, released or spent, the
counterparty's name — looked up for the whole page at once, in a fixed number of queries.

One line per code: a reservation (a withdrawal or payment code) shows while it holds money and
after it is released ("Đang giữ", "Đã trả lại vào ví"), and the release is not a line of its
own; once paid out, its payout stands for it. Two lines of one amount would read as money taken
twice. (A receipt can still open any of them, and the ledger's statement has them all.)

Running balance: every line carries the wallet's posted balance right after it. A reservation
holds money without moving that balance, so it shows no balance; the payout that spends a
reservation moves it.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from flask_babel import lazy_gettext  # type: ignore[import-untyped]
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

import ledger
from kiosk.payments.codes import WITHDRAWAL_CLEARING_OWNER
from kiosk.wallet.history_query import Direction, HistoryQuery
from kiosk.wallet.kinds import EXPIRY_CODE, KINDS_BY_KEY, kind_label, release_reason
from ledger.reads import StatementFilter, StatementLine, StatementPage
from ledger.schema import Account, AccountKind, OpenReservation, Phase, Transfer

HISTORY_PAGE_SIZE = 20
SHORT_ID_LENGTH_CHARS = 8
# Digit runs this long in an account name could be a phone or ID number: masked.
NAME_DIGITS_MASKED_FROM = 6
_DIGIT_RUN = re.compile(rf"[0-9]{{{NAME_DIGITS_MASKED_FROM},}}")


class EntryStatus(enum.StrEnum):
    COMPLETED = "completed"  # money moved
    HELD = "held"  # a reservation still holding money
    RELEASED = "released"  # a reservation voided or expired: the money is back
    SPENT = "spent"  # a reservation later paid out (on its receipt; the history shows the payout)
    REVERSED = "reversed"  # money moved, and a later reversal moved it back


STATUS_LABELS: dict[EntryStatus, str] = {
    EntryStatus.COMPLETED: lazy_gettext("Đã xong"),
    EntryStatus.HELD: lazy_gettext("Đang giữ"),
    EntryStatus.RELEASED: lazy_gettext("Đã trả lại vào ví"),
    EntryStatus.SPENT: lazy_gettext("Đã trừ vào số dư"),
    EntryStatus.REVERSED: lazy_gettext("Đã được hoàn lại"),
}


@dataclass(frozen=True)
class HistoryEntry:
    transfer_id: uuid.UUID
    created_at: dt.datetime
    # Signed: positive money into the wallet, negative money out (or held for going out).
    amount: int
    kind_label: str
    status: EntryStatus
    # Why a reservation was released ("Mã đã hết hạn, ..."), else None.
    release_reason: str | None
    # Whether this line moved the posted balance; when it did, the balance right after it.
    moves_balance: bool
    balance_after: int | None
    counterparty_name: str
    # While held: until when the reservation holds the money (None: no time limit).
    held_until: dt.datetime | None
    # The transfer linked to this one: the reservation it posts or voids, the transfer it
    # reverses, or for a reservation or a reversed transfer, what later became of it.
    related_id: uuid.UUID | None

    @property
    def direction(self) -> Direction:
        return Direction.IN if self.amount > 0 else Direction.OUT

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def short_id(self) -> str:
        return short_transfer_id(self.transfer_id)


@dataclass(frozen=True)
class HistoryPage:
    entries: list[HistoryEntry]
    # Pass as `before` for the next (older) page; None on the last page.
    next_before: int | None


def short_transfer_id(transfer_id: uuid.UUID) -> str:
    """The last 8 hex digits, upper case ("9F3A-0C1D"): the random part of a time-ordered id,
    enough to tell a person's transfers apart when read out over a counter."""
    tail = transfer_id.hex[-SHORT_ID_LENGTH_CHARS:].upper()
    return f"{tail[:4]}-{tail[4:]}"


def public_account_name(name: str) -> str:
    """An account's name as another person may see it: long digit runs masked ("•••678")."""
    return _DIGIT_RUN.sub(lambda match: "•••" + match.group(0)[-3:], name)


# Account names are stored in Vietnamese when the account is opened ("Ví — Nông Văn Bình"). On
# a page in another language the words around the proper names are said in that language; a
# name that does not have its kind's shape is shown as stored.
_STORED_NAME_SHAPES: dict[str, tuple[re.Pattern[str], str]] = {
    AccountKind.CITIZEN_WALLET: (re.compile(r"Ví — (?P<name>.+)"), lazy_gettext("Ví — %(name)s")),
    AccountKind.WELFARE_FUND: (re.compile(r"Quỹ — (?P<name>.+)"), lazy_gettext("Quỹ — %(name)s")),
    AccountKind.MERCHANT: (
        re.compile(r"Quầy hàng (?P<code>\S+): (?P<name>.+)"),
        lazy_gettext("Quầy hàng %(code)s: %(name)s"),
    ),
    AccountKind.AGENT_DRAWER: (
        re.compile(r"Két tiền — (?P<name>.+) \((?P<code>[^()]+)\)"),
        lazy_gettext("Két tiền — %(name)s (%(code)s)"),
    ),
}


def _in_page_language(kind: str, name: str) -> str:
    shape = _STORED_NAME_SHAPES.get(kind)
    found = None if shape is None else shape[0].fullmatch(name)
    if shape is None or found is None:
        return name
    return str(shape[1]) % found.groupdict()


def _shown_name(kind: str, owner_ref: str | None, name: str) -> str:
    """The other side of a line as the citizen knows it. The system's own accounts are named for
    what they are to the citizen (a withdrawal is paid by the post office; a fee is ATM mềm's),
    not by their bookkeeping names ("Tài khoản trung gian rút tiền")."""
    if owner_ref == WITHDRAWAL_CLEARING_OWNER:
        return str(lazy_gettext("Bưu điện (tiền mặt)"))
    if kind == AccountKind.FEE_REVENUE:
        return str(lazy_gettext("ATM mềm (phí dịch vụ)"))
    return public_account_name(_in_page_language(kind, name))


def history_page(
    session: Session, account_id: int, query: HistoryQuery, *, now: dt.datetime
) -> HistoryPage:
    """One page (HISTORY_PAGE_SIZE lines) of the wallet's history, newest first."""
    page = filtered_statement(session, account_id, query, limit=HISTORY_PAGE_SIZE)
    return HistoryPage(describe(session, page.lines, now=now), page.next_before)


def receipt(
    session: Session, account_id: int, transfer_id: uuid.UUID, *, now: dt.datetime
) -> HistoryEntry | None:
    """One transfer of the wallet as a history entry; None when it is not this wallet's."""
    row = session.scalar(
        select(Transfer).where(
            Transfer.id == transfer_id,
            or_(Transfer.debit_account_id == account_id, Transfer.credit_account_id == account_id),
        )
    )
    if row is None:
        return None
    credited = row.credit_account_id == account_id
    phase = Phase(row.phase)
    line = StatementLine(
        transfer_id=row.id,
        seq=row.credit_seq if credited else row.debit_seq,
        created_at=row.created_at,
        phase=phase,
        code=row.code,
        memo=row.memo,
        counterparty_account_id=row.debit_account_id if credited else row.credit_account_id,
        amount=row.amount if credited else -row.amount,
        moves_posted=phase in (Phase.POSTED, Phase.POST_PENDING),
        balance_after=row.credit_balance_after if credited else row.debit_balance_after,
        pending_id=row.pending_id,
        reverses_id=row.reverses_id,
    )
    return describe(session, [line], now=now)[0]


def filtered_statement(
    session: Session, account_id: int, query: HistoryQuery, *, limit: int
) -> StatementPage:
    """`ledger.statement` of a wallet with the query's filters, applied in the database."""
    directions: dict[Direction, Literal["in", "out"]] = {Direction.IN: "in", Direction.OUT: "out"}
    return ledger.statement(
        session,
        account_id,
        before=query.before,
        limit=limit,
        only=StatementFilter(
            direction=directions.get(query.direction),
            codes=None if query.kind is None else KINDS_BY_KEY[query.kind].codes,
            created_from=query.created_from,
            created_until=query.created_until,
            # A withdrawal code paid or cancelled is one line, not a hold and then its end:
            # two lines of one amount read as money taken twice.
            one_line_per_reservation=True,
        ),
    )


def describe(
    session: Session, lines: Sequence[StatementLine], *, now: dt.datetime
) -> list[HistoryEntry]:
    """What each statement line means to the citizen. Four bounded queries for the whole page:
    counterparty names, what became of each reservation and posting, the reservations that
    resolution lines resolve, and the holds still open."""
    if not lines:
        return []
    reservations = [line.transfer_id for line in lines if line.phase is Phase.PENDING]
    postings = [line.transfer_id for line in lines if line.phase is Phase.POSTED]
    resolved = [line.pending_id for line in lines if line.pending_id is not None]
    counterparties = {line.counterparty_account_id for line in lines}

    names = {
        row.id: _shown_name(row.kind, row.owner_ref, row.name)
        for row in session.execute(
            select(Account.id, Account.kind, Account.owner_ref, Account.name).where(
                Account.id.in_(counterparties)
            )
        )
    }
    # What later happened to the reservations and postings on this page: at most one
    # resolution per reservation and one reversal per transfer (UNIQUE in the ledger).
    resolutions: dict[uuid.UUID, tuple[uuid.UUID, Phase, str]] = {}
    reversals: dict[uuid.UUID, uuid.UUID] = {}
    if reservations or postings:
        for row in session.execute(
            select(
                Transfer.id,
                Transfer.pending_id,
                Transfer.reverses_id,
                Transfer.phase,
                Transfer.code,
            ).where(or_(Transfer.pending_id.in_(reservations), Transfer.reverses_id.in_(postings)))
        ):
            if row.pending_id is not None:
                resolutions[row.pending_id] = (row.id, Phase(row.phase), row.code)
            if row.reverses_id is not None:
                reversals[row.reverses_id] = row.id
    reservation_codes: dict[uuid.UUID, str] = {}
    if resolved:
        reservation_codes = {
            row.id: row.code
            for row in session.execute(
                select(Transfer.id, Transfer.code).where(Transfer.id.in_(resolved))
            )
        }
    open_until: dict[uuid.UUID, dt.datetime | None] = {}
    if reservations:
        open_until = {
            row.pending_id: row.expires_at
            for row in session.execute(
                select(OpenReservation.pending_id, OpenReservation.expires_at).where(
                    OpenReservation.pending_id.in_(reservations)
                )
            )
        }

    entries = []
    for line in lines:
        status = EntryStatus.COMPLETED
        reason: str | None = None
        held_until: dt.datetime | None = None
        code = line.code
        related = line.pending_id or line.reverses_id
        if line.phase is Phase.PENDING:
            resolution = resolutions.get(line.transfer_id)
            expires_at = open_until.get(line.transfer_id)
            if resolution is not None:
                related, phase, resolution_code = resolution
                if phase is Phase.POST_PENDING:
                    status = EntryStatus.SPENT
                else:
                    status, reason = EntryStatus.RELEASED, release_reason(resolution_code)
            elif expires_at is not None and expires_at <= now:
                # Expired but not swept yet: the available balance already ignores it.
                status, reason = EntryStatus.RELEASED, release_reason(EXPIRY_CODE)
            else:
                status, held_until = EntryStatus.HELD, expires_at
        elif line.phase is Phase.VOID_PENDING:
            status, reason = EntryStatus.RELEASED, release_reason(line.code)
        elif line.phase is Phase.POSTED and line.transfer_id in reversals:
            status, related = EntryStatus.REVERSED, reversals[line.transfer_id]
        if line.pending_id is not None:
            code = reservation_codes.get(line.pending_id, line.code)
        entries.append(
            HistoryEntry(
                transfer_id=line.transfer_id,
                created_at=line.created_at,
                amount=line.amount,
                kind_label=kind_label(code),
                status=status,
                release_reason=reason,
                moves_balance=line.moves_posted,
                balance_after=line.balance_after if line.moves_posted else None,
                counterparty_name=names.get(line.counterparty_account_id, ""),
                held_until=held_until,
                related_id=related,
            )
        )
    return entries
