"""The history page: newest first with a running balance, keyset paging, filters without
JavaScript, and a clear 400 for every bad query parameter. SQLite and PostgreSQL.

The expected lines are worked out by hand from the transfers each test makes.
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
import re
import uuid
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

import ledger
from kiosk.formatting import LOCAL_ZONE
from kiosk.payments.merchants import MERCHANT_PAYMENT_CODE
from kiosk.wallet.history import filtered_statement
from kiosk.wallet.history_query import Direction, HistoryQuery
from kiosk.wallet.kinds import KIND_OF_CODE
from kiosk.welfare.cycles import WALLET_PAYMENT_CODE
from ledger import AccountKind, Phase, Post, PostPending, Reserve, Reverse, VoidPending
from tests.kiosk.wallet_support import (
    WalletOwner,
    app_session,
    key,
    make_citizen,
    open_account,
    post,
    sign_in,
)


@dataclass(frozen=True)
class Line:
    transfer_id: str
    kind: str
    amount: str
    status: str
    balance_after: str | None


ENTRY = re.compile(
    r'<li class="entry entry-[a-z]+">\s*'
    r'<a class="entry-link" href="/vi/giao-dich/(?P<id>[0-9a-f-]+)">\s*'
    r'<span class="entry-head">\s*<span class="entry-kind">(?P<kind>[^<]*)</span>\s*'
    r'<span class="entry-amount amount-(?:in|out)">(?P<amount>[^<]*)</span>\s*</span>\s*'
    r'<span class="entry-status">(?P<status>[^<]*)</span>\s*'
    r'<span class="entry-meta">[^<]*</span>\s*'
    r'(?:<span class="entry-balance">Số dư sau: (?P<balance>[^<]*)</span>)?'
)

# Money out is signed with a true minus sign (U+2212), not a hyphen.
MINUS = "\u2212"


def lines_of(page: str) -> list[Line]:
    return [
        Line(
            m["id"],
            html_lib.unescape(m["kind"]),
            m["amount"],
            html_lib.unescape(m["status"]).strip(),
            m["balance"],
        )
        for m in ENTRY.finditer(page)
    ]


def older_link(page: str) -> str | None:
    found = re.search(r'<a class="button" href="([^"]+)">Xem cũ hơn</a>', page)
    return None if found is None else html_lib.unescape(found.group(1))


def local(day: int, hour: int = 9, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2025, 3, day, hour, minute, second, tzinfo=LOCAL_ZONE)


@pytest.fixture
def owner(web_app: Flask) -> WalletOwner:
    return make_citizen(web_app)


@pytest.fixture
def citizen_client(web_app: Flask, web_client: FlaskClient, owner: WalletOwner) -> FlaskClient:
    sign_in(web_client, web_app, owner)
    return web_client


def test_history_pages_newest_first_with_running_balance(
    web_app: Flask, citizen_client: FlaskClient, owner: WalletOwner
) -> None:
    funding = open_account(web_app, AccountKind.FUNDING, "Quỹ thử nghiệm")
    # 45 deposits of 1.000 ₫, 2.000 ₫, ... 45.000 ₫, one minute apart.
    for index in range(1, 46):
        post(
            web_app,
            Post(key(), funding, owner.wallet_account_id, index * 1_000, "cash_in"),
            at=local(1, 8) + dt.timedelta(minutes=index),
        )

    first = citizen_client.get("/vi/lich-su")
    assert first.status_code == 200
    page = first.get_data(as_text=True)
    lines = lines_of(page)
    assert [line.amount for line in lines] == [f"+{n}.000\u00a0₫" for n in range(45, 25, -1)]
    # After deposit n the balance is 1.000 ₫ times n(n+1)/2: 1.035.000 ₫ after the 45th.
    assert lines[0].balance_after == "1.035.000\u00a0₫"
    assert lines[1].balance_after == "990.000\u00a0₫"
    assert lines[-1].balance_after == "351.000\u00a0₫"  # after the 26th
    assert {line.kind for line in lines} == {"Nạp tiền"}
    assert {line.status for line in lines} == {"Đã xong"}
    assert "Về giao dịch mới nhất" not in page

    second_url = older_link(page)
    assert second_url is not None and "before=" in second_url
    second = citizen_client.get(second_url).get_data(as_text=True)
    assert [line.amount for line in lines_of(second)] == [
        f"+{n}.000\u00a0₫" for n in range(25, 5, -1)
    ]
    assert "Về giao dịch mới nhất" in second

    third_url = older_link(second)
    assert third_url is not None
    third = citizen_client.get(third_url).get_data(as_text=True)
    third_lines = lines_of(third)
    assert [line.amount for line in third_lines] == [f"+{n}.000\u00a0₫" for n in range(5, 0, -1)]
    assert third_lines[-1].balance_after == "1.000\u00a0₫"
    assert older_link(third) is None


@dataclass(frozen=True)
class Story:
    """A wallet's month, its transfers named in the order they were made."""

    ids: dict[str, str]


@pytest.fixture
def story(web_app: Flask, owner: WalletOwner) -> Story:
    funding = open_account(web_app, AccountKind.FUNDING, "Quỹ thử nghiệm")
    welfare = open_account(web_app, AccountKind.WELFARE_FUND, "Quỹ bảo trợ xã hội xã")
    stall = open_account(web_app, AccountKind.MERCHANT, "Sạp rau bà Lan")
    clearing = open_account(web_app, AccountKind.SETTLEMENT, "Tài khoản trung gian rút tiền")
    fees = open_account(web_app, AccountKind.FEE_REVENUE, "Doanh thu phí")
    post(web_app, Post(key(), funding, welfare, 10_000_000, "fund"))
    wallet = owner.wallet_account_id
    ids: dict[str, uuid.UUID] = {}
    # 1 March, 23:59:59 local: still 1 March though it is 16:59:59 UTC.
    ids["cash_in"] = post(
        web_app, Post(key(), funding, wallet, 1_000_000, "cash_in"), at=local(1, 23, 59, 59)
    )
    # 2 March, 00:00 local: 1 March 17:00 UTC.
    ids["welfare"] = post(
        web_app, Post(key(), welfare, wallet, 500_000, WALLET_PAYMENT_CODE), at=local(2, 0)
    )
    ids["payment"] = post(
        web_app, Post(key(), wallet, stall, 200_000, "merchant_payment"), at=local(2, 10)
    )
    ids["hold_paid"] = post(
        web_app, Reserve(key(), wallet, clearing, 300_000, "withdrawal", 900), at=local(3, 9)
    )
    ids["payout"] = post(
        web_app, PostPending(key(), ids["hold_paid"], code="withdrawal_payout"), at=local(3, 9, 5)
    )
    ids["hold_cancelled"] = post(
        web_app, Reserve(key(), wallet, clearing, 100_000, "withdrawal", 900), at=local(4, 9)
    )
    ids["cancel"] = post(
        web_app, VoidPending(key(), ids["hold_cancelled"], code="cancelled"), at=local(4, 9, 1)
    )
    ids["fee"] = post(web_app, Post(key(), wallet, fees, 5_000, "fee"), at=local(5, 9))
    ids["refund"] = post(web_app, Reverse(key(), ids["fee"]), at=local(5, 10))
    return Story({name: str(transfer_id) for name, transfer_id in ids.items()})


def test_history_tells_holds_releases_and_reversals_apart(
    citizen_client: FlaskClient, story: Story
) -> None:
    lines = lines_of(citizen_client.get("/vi/lich-su").get_data(as_text=True))
    ids = story.ids
    assert lines == [
        Line(
            ids["refund"],
            "Hoàn tiền, sửa giao dịch",
            "+5.000\u00a0₫",
            "Đã xong",
            "1.000.000\u00a0₫",
        ),
        Line(
            ids["fee"], "Phí dịch vụ", f"{MINUS}5.000\u00a0₫", "Đã được hoàn lại", "995.000\u00a0₫"
        ),
        # One line per code: a cancelled hold leaves the balance where it was (its release is
        # not a line of its own), and a paid one is its payout, which moves the balance.
        Line(ids["hold_cancelled"], "Rút tiền", "100.000\u00a0₫", "Đã trả lại vào ví", None),
        Line(ids["payout"], "Rút tiền", f"{MINUS}300.000\u00a0₫", "Đã xong", "1.000.000\u00a0₫"),
        Line(
            ids["payment"],
            "Thanh toán ở chợ, cửa hàng",
            f"{MINUS}200.000\u00a0₫",
            "Đã xong",
            "1.300.000\u00a0₫",
        ),
        Line(ids["welfare"], "Nhận trợ cấp", "+500.000\u00a0₫", "Đã xong", "1.500.000\u00a0₫"),
        Line(ids["cash_in"], "Nạp tiền", "+1.000.000\u00a0₫", "Đã xong", "1.000.000\u00a0₫"),
    ]


def test_open_and_expired_holds(
    web_app: Flask, citizen_client: FlaskClient, owner: WalletOwner
) -> None:
    funding = open_account(web_app, AccountKind.FUNDING, "Quỹ thử nghiệm")
    clearing = open_account(web_app, AccountKind.SETTLEMENT, "Tài khoản trung gian rút tiền")
    wallet = owner.wallet_account_id
    post(web_app, Post(key(), funding, wallet, 800_000, "cash_in"))
    two_hours_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    expired = post(
        web_app, Reserve(key(), wallet, clearing, 100_000, "withdrawal", 60), at=two_hours_ago
    )
    held = post(web_app, Reserve(key(), wallet, clearing, 250_000, "bill_payment", 900))

    page = citizen_client.get("/vi/lich-su").get_data(as_text=True)
    lines = lines_of(page)
    assert [(line.transfer_id, line.kind, line.amount, line.balance_after) for line in lines] == [
        (str(held), "Trả tiền hóa đơn", "250.000\u00a0₫", None),
        (str(expired), "Rút tiền", "100.000\u00a0₫", None),
        (lines[2].transfer_id, "Nạp tiền", "+800.000\u00a0₫", "800.000\u00a0₫"),
    ]
    assert lines[0].status.startswith("Đang giữ đến ")
    # Expired but not swept yet: already released as far as the citizen is concerned.
    assert lines[1].status == "Đã trả lại vào ví"


FILTER_CASES = [
    ("direction=in", ["refund", "welfare", "cash_in"]),
    ("direction=out", ["fee", "hold_cancelled", "payout", "payment"]),
    ("direction=all", None),
    ("kind=withdrawal", ["hold_cancelled", "payout"]),
    ("kind=welfare", ["welfare"]),
    ("kind=reversal", ["refund"]),
    ("kind=bill_payment", []),
    # Local dates: the welfare at 00:00 on 2 March is in, the 23:59:59 cash-in on 1 March is out.
    ("from=2025-03-02&to=2025-03-03", ["payout", "payment", "welfare"]),
    ("to=01/03/2025", ["cash_in"]),
    ("from=5/3/2025", ["refund", "fee"]),
    ("direction=out&kind=withdrawal&from=2025-03-04", ["hold_cancelled"]),
    ("direction=in&kind=fee", []),
    # What a GET form sends for fields left blank: no filter at all.
    ("direction=all&kind=&from=&to=", None),
]
EVERYTHING = [
    "refund",
    "fee",
    "hold_cancelled",
    "payout",
    "payment",
    "welfare",
    "cash_in",
]


@pytest.mark.parametrize(("query", "expected"), FILTER_CASES)
def test_history_filters(
    citizen_client: FlaskClient, story: Story, query: str, expected: list[str] | None
) -> None:
    response = citizen_client.get(f"/vi/lich-su?{query}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    names = {transfer_id: name for name, transfer_id in story.ids.items()}
    shown = [names[line.transfer_id] for line in lines_of(page)]
    assert shown == (EVERYTHING if expected is None else expected)
    if expected == []:
        assert "Không có giao dịch nào khớp với lựa chọn của bạn." in page


def test_filtered_pages_keep_their_filters(
    web_app: Flask, citizen_client: FlaskClient, owner: WalletOwner
) -> None:
    funding = open_account(web_app, AccountKind.FUNDING, "Quỹ thử nghiệm")
    welfare = open_account(web_app, AccountKind.WELFARE_FUND, "Quỹ bảo trợ xã hội xã")
    post(web_app, Post(key(), funding, welfare, 10_000_000, "fund"))
    # Alternating deposits and welfare payments: 25 of each.
    for index in range(1, 26):
        at = local(10) + dt.timedelta(minutes=index)
        post(web_app, Post(key(), funding, owner.wallet_account_id, 1_000, "cash_in"), at=at)
        post(web_app, Post(key(), welfare, owner.wallet_account_id, index * 100, "welfare"), at=at)

    page = citizen_client.get("/vi/lich-su?kind=welfare").get_data(as_text=True)
    assert [line.amount for line in lines_of(page)] == [
        f"+{n * 100:,}\u00a0₫".replace(",", ".") for n in range(25, 5, -1)
    ]
    # The running balance is the wallet's, not a sum of what the filter shows.
    assert lines_of(page)[0].balance_after == "57.500\u00a0₫"
    older = older_link(page)
    assert older is not None and "kind=welfare" in older
    rest = citizen_client.get(older).get_data(as_text=True)
    assert [line.amount for line in lines_of(rest)] == [
        "+500\u00a0₫",
        "+400\u00a0₫",
        "+300\u00a0₫",
        "+200\u00a0₫",
        "+100\u00a0₫",
    ]
    assert older_link(rest) is None
    # The form shows the filter that is on.
    assert '<option value="welfare" selected>' in rest


def test_filtered_query_matches_the_ledger_statement(
    web_app: Flask, owner: WalletOwner, story: Story
) -> None:
    """The SQL filters return exactly the ledger's statement lines that match, page by page."""
    with app_session(web_app) as session:
        wallet = owner.wallet_account_id
        # The wallet's statement as a person reads it: no void (the hold it voided says it was
        # released), and no hold that a payout later spent (the payout stands for it).
        statement = ledger.statement(session, wallet, limit=100).lines
        spent = {line.pending_id for line in statement if line.phase is Phase.POST_PENDING}
        everything = [
            line
            for line in statement
            if line.phase is not Phase.VOID_PENDING and line.transfer_id not in spent
        ]
        assert len(statement) == len(everything) + 2
        assert len(everything) == len(EVERYTHING)
        for query, keep in (
            (HistoryQuery(), lambda line: True),
            (HistoryQuery(direction=Direction.IN), lambda line: line.amount > 0),
            (HistoryQuery(direction=Direction.OUT), lambda line: line.amount < 0),
        ):
            expected = [line for line in everything if keep(line)]
            found = []
            before = None
            while True:
                page = filtered_statement(
                    session, wallet, HistoryQuery(query.direction, before=before), limit=2
                )
                found.extend(page.lines)
                if page.next_before is None:
                    break
                before = page.next_before
            assert found == expected


BAD_QUERIES = [
    ("direction=up", "“Chiều tiền” không đúng"),
    ("direction=IN", "“Chiều tiền” không đúng"),
    ("kind=lottery", "“Loại giao dịch” không đúng"),
    ("kind=post_pending", "“Loại giao dịch” không đúng"),
    ("from=2025-13-01", "“Từ ngày” không phải là một ngày đúng"),
    ("from=31/02/2025", "“Từ ngày” không phải là một ngày đúng"),
    ("from=yesterday", "“Từ ngày” không phải là một ngày đúng"),
    ("from=1999-12-31", "“Từ ngày” không phải là một ngày đúng"),
    ("to=2025-3-1", "“Đến ngày” không phải là một ngày đúng"),
    ("to=%EF%BC%92025-03-01", "“Đến ngày” không phải là một ngày đúng"),
    ("from=2025-03-05&to=2025-03-01", "“Từ ngày” phải là trước hoặc cùng ngày với “Đến ngày”"),
    ("before=abc", "Địa chỉ trang lịch sử không đúng"),
    ("before=0", "Địa chỉ trang lịch sử không đúng"),
    ("before=-5", "Địa chỉ trang lịch sử không đúng"),
    ("before=007", "Địa chỉ trang lịch sử không đúng"),
    ("before=%D9%A1%D9%A2", "Địa chỉ trang lịch sử không đúng"),  # Arabic-Indic digits
    ("before=99999999999999999999", "Địa chỉ trang lịch sử không đúng"),
    ("before=" + "1" * 40, "Địa chỉ trang lịch sử không đúng"),
    ("direction=in&direction=out", "Mục “Chiều tiền” có nhiều hơn một giá trị"),
    ("page=2", "Địa chỉ trang có thông tin không dùng được"),
    ("&".join(f"x{n}=1" for n in range(11)), "Địa chỉ trang có quá nhiều thông tin"),
]


@pytest.mark.parametrize(("query", "message"), BAD_QUERIES)
def test_bad_query_parameters_are_refused_in_vietnamese(
    citizen_client: FlaskClient, query: str, message: str
) -> None:
    response = citizen_client.get(f"/vi/lich-su?{query}")
    assert response.status_code == 400
    page = html_lib.unescape(response.get_data(as_text=True))
    assert '<html lang="vi">' in page
    assert "Không xem được lịch sử" in page
    assert message in page
    assert 'href="/vi/lich-su"' in page


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("cash_in", "cash_in"),
        ("withdrawal", "withdrawal"),
        (MERCHANT_PAYMENT_CODE, "payment"),
        ("bill_payment", "bill_payment"),
        (WALLET_PAYMENT_CODE, "welfare"),
        ("fee", "fee"),
    ],
)
def test_every_code_that_moves_a_citizens_money_has_its_kind(code: str, kind: str) -> None:
    """The codes the product's own operations post on a wallet: none is "Giao dịch khác"."""
    assert KIND_OF_CODE[code].key == kind


def test_a_refused_query_gives_the_form_back_as_it_was_sent(
    citizen_client: FlaskClient,
) -> None:
    """One wrong date does not wipe the other choices: the form comes back filled in."""
    response = citizen_client.get(
        "/vi/lich-su?direction=out&kind=withdrawal&from=31/02/2025&to=2025-03-10"
    )
    assert response.status_code == 400
    page = html_lib.unescape(response.get_data(as_text=True))
    assert "“Từ ngày” không phải là một ngày đúng" in page
    assert '<option value="out" selected>' in page
    assert '<option value="withdrawal" selected>' in page
    assert 'name="from" placeholder="ngày/tháng/năm" value="31/02/2025"' in page
    assert 'name="to" placeholder="ngày/tháng/năm" value="2025-03-10"' in page
    # Sent again with the date put right, the history shows.
    fixed = citizen_client.get("/vi/lich-su?direction=out&kind=withdrawal&from=2025-02-28")
    assert fixed.status_code == 200
