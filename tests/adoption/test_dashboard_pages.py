"""The adoption pages: who sees which commune and province, the figures as the core computes
them, the period picker's errors, and the denominators and targets form."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
from flask import Flask
from flask.testing import FlaskClient

from kiosk.adoption import denominators, indicators
from kiosk.adoption.indicators import Figure
from kiosk.adoption.presentation import present
from kiosk.adoption.rollup import rebuild
from kiosk.citizens.models import Sex
from kiosk.community.models import OfficialRole
from kiosk.formatting import local_today
from tests.community.support import (
    COMMUNE_CODE,
    OTHER_COMMUNE_CODE,
    OTHER_PROVINCE_CODE,
    OTHER_PROVINCE_COMMUNE_CODE,
    PROVINCE_CODE,
    app_session,
    community_app,
    community_client,
    make_official,
    sign_in_official,
)
from tests.kiosk.citizen_support import make_citizen
from tests.kiosk.conftest import AppFactory, database_url, make_app, web_backend

__all__ = ["community_app", "community_client", "database_url", "make_app", "web_backend"]

# Phường Tây Hồ (Hà Nội): no other test makes citizens there, so its figures are this file's.
FIGURES_COMMUNE_CODE = "00103"
# Phường Ngọc Hà (Hà Nội): where this file enters denominators and targets, so that on the shared
# PostgreSQL database it changes no other test's commune.
ENTRY_COMMUNE_CODE = "00008"
BASE = "/quan-ly/chi-so"


def commune_paths(code: str) -> list[str]:
    return [
        f"{BASE}/xa/{code}",
        f"{BASE}/xa/{code}/chi-so.csv",
        f"{BASE}/xa/{code}/chi-so.xlsx",
        f"{BASE}/xa/{code}/bao-cao",
        f"{BASE}/xa/{code}/mau-so",
    ]


def province_paths(code: str) -> list[str]:
    return [
        f"{BASE}/tinh/{code}",
        f"{BASE}/tinh/{code}/xep-hang.csv",
        f"{BASE}/tinh/{code}/xep-hang.xlsx",
    ]


def signed_in(app: Flask, client: FlaskClient, role: OfficialRole, **place: str) -> FlaskClient:
    sign_in_official(app, client, make_official(app, role, **place))
    return client


# --- Scoping ------------------------------------------------------------------------------------


def test_commune_official_sees_every_page_and_export_of_own_commune(
    community_app: Flask, community_client: FlaskClient
) -> None:
    client = signed_in(community_app, community_client, OfficialRole.COMMUNE_OFFICIAL)
    for path in commune_paths(COMMUNE_CODE):
        assert client.get(path).status_code == 200, path


def test_commune_official_never_sees_another_communes_pages_or_exports(
    community_app: Flask, community_client: FlaskClient
) -> None:
    client = signed_in(community_app, community_client, OfficialRole.COMMUNE_OFFICIAL)
    for path in commune_paths(OTHER_COMMUNE_CODE):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "Phường Ba Đình" not in response.get_data(as_text=True)


def test_commune_official_and_team_member_have_no_province_ranking(
    community_app: Flask, community_client: FlaskClient
) -> None:
    for role in (OfficialRole.COMMUNE_OFFICIAL, OfficialRole.TEAM_MEMBER):
        client = community_app.test_client()
        signed_in(community_app, client, role)
        for path in province_paths(PROVINCE_CODE):
            assert client.get(path).status_code == 403, (role, path)


def test_team_member_reads_own_commune_but_cannot_enter_targets(
    community_app: Flask, community_client: FlaskClient
) -> None:
    client = signed_in(community_app, community_client, OfficialRole.TEAM_MEMBER)
    assert client.get(f"{BASE}/xa/{COMMUNE_CODE}").status_code == 200
    page = client.get(f"{BASE}/xa/{COMMUNE_CODE}/mau-so").get_data(as_text=True)
    assert "Lưu mẫu số" not in page
    response = client.post(
        f"{BASE}/xa/{COMMUNE_CODE}/mau-so",
        data={"action": "target", "target_key": "adults_with_account", "target_rate": "80"},
    )
    assert response.status_code == 403
    assert client.get(f"{BASE}/xa/{OTHER_COMMUNE_CODE}").status_code == 403


def test_province_official_sees_own_provinces_communes_and_ranking_only(
    community_app: Flask, community_client: FlaskClient
) -> None:
    client = signed_in(community_app, community_client, OfficialRole.PROVINCE_OFFICIAL)
    for path in commune_paths(COMMUNE_CODE) + commune_paths(OTHER_COMMUNE_CODE):
        assert client.get(path).status_code == 200, path
    for path in province_paths(PROVINCE_CODE):
        assert client.get(path).status_code == 200, path
    for path in commune_paths(OTHER_PROVINCE_COMMUNE_CODE) + province_paths(OTHER_PROVINCE_CODE):
        assert client.get(path).status_code == 403, path


def test_province_official_reads_targets_but_cannot_change_them(
    community_app: Flask, community_client: FlaskClient
) -> None:
    client = signed_in(community_app, community_client, OfficialRole.PROVINCE_OFFICIAL)
    response = client.post(
        f"{BASE}/xa/{COMMUNE_CODE}/mau-so",
        data={"action": "target", "target_key": "adults_with_account", "target_rate": "80"},
    )
    assert response.status_code == 403


def test_admin_sees_every_province_and_commune(
    community_app: Flask, community_client: FlaskClient
) -> None:
    client = signed_in(community_app, community_client, OfficialRole.ADMIN)
    index = client.get(f"{BASE}/")
    assert index.status_code == 200
    assert "Tỉnh Cao Bằng" in index.get_data(as_text=True)
    for path in commune_paths(OTHER_PROVINCE_COMMUNE_CODE) + province_paths(OTHER_PROVINCE_CODE):
        assert client.get(path).status_code == 200, path
    assert client.get(f"{BASE}/xa/99999").status_code == 404
    assert client.get(f"{BASE}/tinh/99").status_code == 404


def test_the_area_link_leads_each_official_to_their_own_place(
    community_app: Flask, community_client: FlaskClient
) -> None:
    client = signed_in(community_app, community_client, OfficialRole.COMMUNE_OFFICIAL)
    assert client.get(f"{BASE}/").headers["Location"] == f"{BASE}/xa/{COMMUNE_CODE}"
    other = community_app.test_client()
    signed_in(community_app, other, OfficialRole.PROVINCE_OFFICIAL)
    assert other.get(f"{BASE}/").headers["Location"] == f"{BASE}/tinh/{PROVINCE_CODE}"


def test_anonymous_visitors_are_sent_to_sign_in(community_client: FlaskClient) -> None:
    for path in commune_paths(COMMUNE_CODE) + province_paths(PROVINCE_CODE):
        response = community_client.get(path)
        assert response.status_code == 302, path
        assert "/quan-ly/dang-nhap" in response.headers["Location"]


# --- The query ----------------------------------------------------------------------------------


@pytest.mark.parametrize("period", ["2026-13", "2026-Q5", "hôm qua", "2026-00", "1999-01"])
def test_an_unreadable_period_is_400_with_a_vietnamese_message(
    community_app: Flask, community_client: FlaskClient, period: str
) -> None:
    client = signed_in(community_app, community_client, OfficialRole.ADMIN)
    for path in (
        f"{BASE}/xa/{COMMUNE_CODE}",
        f"{BASE}/xa/{COMMUNE_CODE}/chi-so.csv",
        f"{BASE}/tinh/{PROVINCE_CODE}",
    ):
        response = client.get(path, query_string={"ky": period})
        assert response.status_code == 400, path
        assert "Kỳ báo cáo" in response.get_data(as_text=True)
        assert "không đọc được" in response.get_data(as_text=True)


def test_an_unknown_indicator_or_page_is_400(
    community_app: Flask, community_client: FlaskClient
) -> None:
    client = signed_in(community_app, community_client, OfficialRole.ADMIN)
    response = client.get(f"{BASE}/tinh/{PROVINCE_CODE}", query_string={"chi-so": "=1+1"})
    assert response.status_code == 400
    assert "Không có chỉ số" in response.get_data(as_text=True)
    for page in ("0", "x", "999"):
        response = client.get(f"{BASE}/tinh/{PROVINCE_CODE}", query_string={"trang": page})
        assert response.status_code == 400, page


@pytest.mark.parametrize("period", ["2026-11", "2026-Q4", "2026-ytd"])
def test_every_kind_of_period_renders(
    community_app: Flask, community_client: FlaskClient, period: str
) -> None:
    client = signed_in(community_app, community_client, OfficialRole.ADMIN)
    for path in (f"{BASE}/xa/{COMMUNE_CODE}", f"{BASE}/tinh/{PROVINCE_CODE}"):
        response = client.get(path, query_string={"ky": period})
        assert response.status_code == 200, (path, period)


def test_province_ranking_is_paged_and_every_commune_listed_once(
    community_app: Flask, community_client: FlaskClient
) -> None:
    client = signed_in(community_app, community_client, OfficialRole.ADMIN)
    names: list[str] = []
    page_number = 1
    while True:
        response = client.get(f"{BASE}/tinh/{PROVINCE_CODE}", query_string={"trang": page_number})
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        names.extend(
            part.split('">', 1)[1].split("</a>", 1)[0]
            for part in body.split(f'href="{BASE}/xa/')[1:]
        )
        if "Trang sau" not in body:
            break
        page_number += 1
    assert page_number > 1  # Hà Nội has 126 communes, more than one page
    assert len(names) == len(set(names))


# --- Figures ------------------------------------------------------------------------------------


# The figures' day: in the past, so that nothing this file commits is newer than the fixed clock
# of the roll-up's own tests, which share the PostgreSQL database (10:00 in Hà Nội).
FIGURES_AT = dt.datetime(2026, 1, 15, 3, 0, tzinfo=dt.UTC)
FIGURES_PERIOD = "2026-01"


def make_citizen_at(app: Flask, at: dt.datetime, *, verified: bool, cash_in_vnd: int = 0) -> None:
    """A committed citizen of the figures' commune who opened an account at ``at``, verified
    then or not, with a cash-in then."""
    make_citizen(
        app,
        balance_vnd=cash_in_vnd,
        verified=verified,
        full_name="Lò Văn Pỏm",
        commune_code=FIGURES_COMMUNE_CODE,
        date_of_birth=dt.date(1970, 3, 8),
        sex=Sex.MALE,
        now=at,
    )


@pytest.fixture
def figures_commune(community_app: Flask) -> str:
    """Three people of Phường Tây Hồ opened an account in January 2026: two verified, one with
    money in; the commune entered 1,000 adults for 2026. The aggregates are rebuilt."""
    make_citizen_at(community_app, FIGURES_AT, verified=True, cash_in_vnd=50_000)
    make_citizen_at(community_app, FIGURES_AT, verified=True)
    make_citizen_at(community_app, FIGURES_AT, verified=False)
    now = dt.datetime.now(dt.UTC)
    with app_session(community_app) as session:
        denominators.set_denominator(
            session,
            commune_code=FIGURES_COMMUNE_CODE,
            year=FIGURES_AT.year,
            kind=denominators.DenominatorKind.ADULTS,
            value=1000,
            source="Công an phường, 01/2026",
            as_of=FIGURES_AT.date(),
            by="admin",
            now=now,
        )
        # A rebuild, not a roll-up: these accounts are dated January, behind the watermark that
        # earlier tests on the shared database may have moved to today.
        rebuild(session, now)
        session.commit()
    return FIGURES_COMMUNE_CODE


def test_dashboard_shows_each_indicator_as_the_core_computes_it(
    community_app: Flask, community_client: FlaskClient, figures_commune: str
) -> None:
    client = signed_in(
        community_app, community_client, OfficialRole.COMMUNE_OFFICIAL, commune_code=figures_commune
    )
    response = client.get(f"{BASE}/xa/{figures_commune}", query_string={"ky": FIGURES_PERIOD})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    today = local_today(dt.datetime.now(dt.UTC))
    with app_session(community_app) as session, community_app.test_request_context():
        period = indicators.parse_period(FIGURES_PERIOD, today)
        figures = indicators.commune_indicators(session, figures_commune, period, today)
        views = [present(figure) for figure in figures]
    for view in views:
        assert str(view.definition.label) in body
        if view.figure.denominator is not None and view.presentation not in ("days",):
            assert f"{view.numerator} / {view.denominator}" in body, view.key
    created = {view.key: view for view in views}["accounts_created"]
    assert created.figure.numerator == 3
    verified = {view.key: view for view in views}["verified_of_created"]
    # 2 of the 3 accounts opened that month are verified: "2 / 3 (66,7%)".
    assert (verified.figure.numerator, verified.figure.denominator) == (2, 3)
    assert "2 / 3</strong>" in body
    assert "(66,7%)" in body
    # Per 1,000 adults: 3 accounts for 1,000 adults.
    assert "3,0" in body
    assert "Hệ thống xác nhận" in body
    assert "Mẫu số nhỏ" in body  # 3 accounts: a small denominator
    assert "<details" in body and "Cách tính" in body
    assert "Số liệu tính đến" in body
    assert body.count('role="img"') >= 2  # the funnel and the trend, beside their tables


def test_csv_export_has_a_bom_vietnamese_text_and_escaped_formulas(
    community_app: Flask, community_client: FlaskClient
) -> None:
    client = signed_in(
        community_app,
        community_client,
        OfficialRole.COMMUNE_OFFICIAL,
        commune_code=ENTRY_COMMUNE_CODE,
    )
    year = local_today(dt.datetime.now(dt.UTC)).year
    posted = client.post(
        f"{BASE}/xa/{ENTRY_COMMUNE_CODE}/mau-so?nam={year}",
        data={
            "action": "denominator",
            "denominator_kind": "adults",
            "denominator_value": "12.500",
            "denominator_source": '=HYPERLINK("http://x")',
            "denominator_as_of": f"{year}-01-01",
        },
    )
    assert posted.status_code == 302, posted.get_data(as_text=True)
    posted = client.post(
        f"{BASE}/xa/{ENTRY_COMMUNE_CODE}/mau-so?nam={year}",
        data={
            "action": "target",
            "target_key": "adults_with_account",
            "target_rate": "80",
            "target_source": "=cmd|' /C calc'!A0",
        },
    )
    assert posted.status_code == 302, posted.get_data(as_text=True)
    response = client.get(
        f"{BASE}/xa/{ENTRY_COMMUNE_CODE}/chi-so.csv", query_string={"ky": f"{year}-ytd"}
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.data.startswith(b"\xef\xbb\xbf")
    text = response.data.decode("utf-8-sig")
    assert "Phường Ngọc Hà" in text
    assert "Người lớn có tài khoản" in text
    assert "'=cmd|' /C calc'!A0" in text
    assert "\n=cmd" not in text and ",=cmd" not in text


def test_xlsx_export_opens_and_has_the_definitions_sheet(
    community_app: Flask, community_client: FlaskClient
) -> None:
    client = signed_in(community_app, community_client, OfficialRole.COMMUNE_OFFICIAL)
    response = client.get(f"{BASE}/xa/{COMMUNE_CODE}/chi-so.xlsx")
    assert response.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(response.data))
    assert workbook.sheetnames == ["Số liệu", "Mục tiêu", "Định nghĩa"]
    figures = [row for row in workbook["Số liệu"].iter_rows(values_only=True)]
    keys = [row[0] for row in figures]
    for key in indicators.INDICATOR_KEYS:
        assert key in keys
    definitions = list(workbook["Định nghĩa"].iter_rows(values_only=True))
    assert len(definitions) == 1 + len(indicators.INDICATOR_KEYS)
    assert definitions[1][0] == "accounts_created"
    assert all(row[4] for row in definitions[1:])  # each has its text


def test_province_ranking_exports_are_scoped_and_complete(
    community_app: Flask, community_client: FlaskClient
) -> None:
    client = signed_in(community_app, community_client, OfficialRole.PROVINCE_OFFICIAL)
    response = client.get(f"{BASE}/tinh/{PROVINCE_CODE}/xep-hang.csv")
    assert response.status_code == 200
    text = response.data.decode("utf-8-sig")
    assert "Thành phố Hà Nội" in text
    assert "Phường Ba Đình" in text
    assert "Phường Thục Phán" not in text  # Cao Bằng's


def test_print_report_has_the_place_period_generation_time_and_signatures(
    community_app: Flask, community_client: FlaskClient
) -> None:
    client = signed_in(community_app, community_client, OfficialRole.COMMUNE_OFFICIAL)
    response = client.get(f"{BASE}/xa/{COMMUNE_CODE}/bao-cao", query_string={"ky": "2026-Q4"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Phường Văn Miếu - Quốc Tử Giám" in body
    assert "Thành phố Hà Nội" in body
    assert "Quý 4/2026" in body
    assert "Lập lúc:" in body
    assert local_today(dt.datetime.now(dt.UTC)).strftime("%d/%m/%Y") in body
    assert "Người lập biểu" in body
    assert "Chủ tịch UBND xã" in body
    assert "adoption.css" in body  # where the A4 print rules are


def figure(key: str, numerator: int, denominator: int | None, **extra: object) -> Figure:
    rate = numerator / denominator if denominator else None
    fields: dict[str, object] = {
        "per_1000": None,
        "interval": None,
        "small_denominator": False,
        "missing": None if rate is not None else "chưa nhập số người lớn năm 2026",
        **extra,
    }
    return Figure(key, numerator, denominator, rate, **fields)  # type: ignore[arg-type]


def test_each_kind_of_figure_reads_as_numerator_over_denominator_with_its_unit(
    make_app: AppFactory,
) -> None:
    with make_app().test_request_context():
        share = present(figure("welfare_cashless_of_paid_count", 185, 200, interval=(0.88, 0.95)))
        money = present(figure("welfare_cashless_of_paid_value", 9_250_000, 10_000_000))
        ratio = present(figure("team_visits_per_member_week", 25, 10))
        days = present(figure("median_days_to_first_payment", 4, 9, value=4.5))
        missing = present(figure("adults_with_account", 120, None))
        created = present(figure("accounts_created", 1234, None, per_1000=12.34))
    assert (share.numerator, share.denominator, share.rate) == ("185", "200", "92,5%")
    assert share.interval == "88,0% - 95,0%"
    assert share.rate_number == 92.5
    assert (money.numerator, money.rate) == ("9.250.000\u00a0₫", "92,5%")
    assert ratio.rate == "2,5" and ratio.rate_number == 2.5
    assert days.numerator == "4,5 ngày"
    assert missing.rate == "chưa nhập số người lớn năm 2026"
    assert missing.headline == "120"
    assert (created.headline, created.per_1000) == ("1.234", "12,3")
    assert share.evidence == "Hệ thống xác nhận"


# --- Denominators and targets -------------------------------------------------------------------


def test_commune_official_enters_a_denominator_and_a_target(
    community_app: Flask, community_client: FlaskClient
) -> None:
    client = signed_in(
        community_app,
        community_client,
        OfficialRole.COMMUNE_OFFICIAL,
        commune_code=ENTRY_COMMUNE_CODE,
    )
    path = f"{BASE}/xa/{ENTRY_COMMUNE_CODE}/mau-so?nam=2030"
    counted_on = local_today(dt.datetime.now(dt.UTC))
    response = client.post(
        path,
        data={
            "action": "denominator",
            "denominator_kind": "households",
            "denominator_value": "3 400",
            "denominator_source": "Thống kê phường",
            "denominator_as_of": counted_on.strftime("%d/%m/%Y"),
        },
    )
    assert response.status_code == 302
    response = client.post(
        path,
        data={
            "action": "target",
            "target_key": "households_visited",
            "target_rate": "92,5",
            "target_source": "Nghị quyết 12",
        },
    )
    assert response.status_code == 302
    page = client.get(path).get_data(as_text=True)
    assert "3.400" in page and "Thống kê phường" in page
    assert counted_on.strftime("%d/%m/%Y") in page
    assert "92,5%" in page and "Nghị quyết 12" in page
    with app_session(community_app) as session, community_app.app_context():
        kinds = {
            entry.kind: entry.value
            for entry in denominators.denominators_of(session, ENTRY_COMMUNE_CODE, 2030)
        }
        rates = {
            entry.key: entry.rate
            for entry in denominators.targets_of(session, ENTRY_COMMUNE_CODE, 2030)
        }
    assert kinds[denominators.DenominatorKind.HOUSEHOLDS] == 3400
    assert rates["households_visited"] == pytest.approx(0.925)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {
                "action": "denominator",
                "denominator_kind": "adults",
                "denominator_value": "nhiều",
                "denominator_source": "x",
                "denominator_as_of": "2031-01-01",
            },
            "denominator_value",
            "chữ số",
        ),
        (
            {
                "action": "denominator",
                "denominator_kind": "adults",
                "denominator_value": "10",
                "denominator_source": "x",
                "denominator_as_of": "31/02/2031",
            },
            "denominator_as_of",
            "ngày",
        ),
        (
            {
                "action": "denominator",
                "denominator_kind": "",
                "denominator_value": "10",
                "denominator_source": "x",
                "denominator_as_of": "2031-01-01",
            },
            "denominator_kind",
            "loại",
        ),
        (
            {
                "action": "target",
                "target_key": "adults_with_account",
                "target_rate": "tám mươi",
                "target_source": "x",
            },
            "target_rate",
            "phần trăm",
        ),
        (
            {
                "action": "target",
                "target_key": "median_days_to_first_payment",
                "target_rate": "80",
                "target_source": "x",
            },
            "target_key",
            "chỉ tiêu",
        ),
        (
            {
                "action": "target",
                "target_key": "adults_with_account",
                "target_rate": "150",
                "target_source": "x",
            },
            "target_rate",
            "",
        ),
    ],
)
def test_a_bad_entry_is_refused_with_a_vietnamese_message_and_nothing_saved(
    community_app: Flask,
    community_client: FlaskClient,
    data: dict[str, str],
    field: str,
    message: str,
) -> None:
    client = signed_in(
        community_app,
        community_client,
        OfficialRole.COMMUNE_OFFICIAL,
        commune_code=ENTRY_COMMUNE_CODE,
    )
    response = client.post(f"{BASE}/xa/{ENTRY_COMMUNE_CODE}/mau-so?nam=2031", data=data)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Chưa gửi được" in body
    assert f'href="#{field}"' in body
    assert message in body
    with app_session(community_app) as session, community_app.app_context():
        assert denominators.denominators_of(session, ENTRY_COMMUNE_CODE, 2031) == []
        assert denominators.targets_of(session, ENTRY_COMMUNE_CODE, 2031) == []


def test_a_bad_year_is_400(community_app: Flask, community_client: FlaskClient) -> None:
    client = signed_in(community_app, community_client, OfficialRole.COMMUNE_OFFICIAL)
    for year in ("x", "1900", "3000"):
        response = client.get(f"{BASE}/xa/{COMMUNE_CODE}/mau-so", query_string={"nam": year})
        assert response.status_code == 400, year
        assert "Năm phải từ" in response.get_data(as_text=True)
