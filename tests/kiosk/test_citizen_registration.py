"""Self-registration through the pages (SQLite and PostgreSQL), registration on a citizen's
behalf, and where the ID number may and may not appear."""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from collections.abc import Callable
from html import unescape
from pathlib import Path

import pytest
from argon2.exceptions import VerifyMismatchError
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from test_citizen_helpers import (
    COMMUNE_CODE,
    COMMUNE_NAME,
    DATE_OF_BIRTH,
    OTHER_PROVINCE_COMMUNE_CODE,
    PROVINCE_CODE,
    citizen_id_for,
    csrf_token,
    db_session,
    field_errors,
    find_citizen,
    post_form,
    register,
    registration_form,
    sign_in,
    summary_links,
    unique_phone,
)

from kiosk.citizens import registration
from kiosk.citizens.credentials import PIN_HASHER
from kiosk.citizens.models import Citizen, KycTier
from kiosk.citizens.phone import PhoneInvalid, normalise_phone
from kiosk.pii import vault
from kiosk.places.seed import vietnamese_sort_key
from ledger import Account, AccountKind

Form = dict[str, str]


def _counts(app: Flask) -> tuple[int, int]:
    with db_session(app) as session:
        citizens = session.scalar(select(func.count()).select_from(Citizen)) or 0
        accounts = session.scalar(select(func.count()).select_from(Account)) or 0
    return citizens, accounts


def _local_today() -> dt.date:
    return dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=7))).date()


def _years_ago(years: int, days_later: int = 0) -> dt.date:
    # The cases below stay a few days away from any birthday, so that a test running across
    # midnight cannot change the age it computes.
    today = _local_today()
    born = today.replace(year=today.year - years, day=min(today.day, 28))
    return born + dt.timedelta(days=days_later)


TOMORROW = _local_today() + dt.timedelta(days=1)
# On 31 December tomorrow's year is not allowed at all, and the message says so instead.
TOMORROW_MESSAGE = "tương lai" if TOMORROW.year == _local_today().year else "từ 1900 đến"


def _born(date: dt.date, sex: str = "female") -> Form:
    return {
        "birth_day": str(date.day),
        "birth_month": str(date.month),
        "birth_year": str(date.year),
        "sex": sex,
        "citizen_id": citizen_id_for(date, sex),
    }


# --- The happy path -----------------------------------------------------------------------------


def test_first_step_asks_for_the_personal_details(web_client: FlaskClient) -> None:
    response = web_client.get("/dang-ky")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert "Mở tài khoản" in html
    assert "Cần đủ 15 tuổi trở lên để tự mở tài khoản." in html
    for name in ("phone", "full_name", "citizen_id", "birth_day", "birth_month", "birth_year"):
        assert f'name="{name}"' in html
    assert '<option value="01">Hà Nội</option>' in html
    # The commune comes in the second step, once the province is known.
    assert 'name="commune"' not in html


def test_registration_in_two_steps_opens_the_account_and_signs_in(
    web_app: Flask, web_client: FlaskClient
) -> None:
    form = registration_form(
        phone="+84 " + unique_phone()[1:],
        # Decomposed (NFD) as some keyboards type it: stored composed (NFC).
        full_name=unicodedata.normalize("NFD", "  Hoàng   Thị Mai "),
    )
    personal = {key: form[key] for key in registration.PERSONAL_FIELDS}

    first = post_form(web_client, "/dang-ky", {**personal, "action": "details"})
    assert first.status_code == 200
    html = first.get_data(as_text=True)
    assert "Bước 2 trên 2" in html
    assert f'<option value="{COMMUNE_CODE}">{COMMUNE_NAME}</option>' in html
    assert "Đồng ý cho xử lý thông tin cá nhân" in html
    assert 'type="checkbox" name="consent" value="yes">' in html  # not ticked for them

    searched = post_form(
        web_client, "/dang-ky", {**personal, "commune_query": "van mieu", "action": "search"}
    )
    assert searched.status_code == 200
    options = searched.get_data(as_text=True).count('<option value="')
    assert options == 1
    assert f'<option value="{COMMUNE_CODE}" selected>{COMMUNE_NAME}</option>' in (
        searched.get_data(as_text=True)
    )

    response = post_form(web_client, "/dang-ky", form)
    assert response.status_code == 302
    assert response.headers["Location"] == "/vi"  # wallet.home

    phone = "0" + form["phone"].removeprefix("+84 ")
    citizen = find_citizen(web_app, phone)
    assert citizen is not None
    assert citizen.full_name == "Hoàng Thị Mai"
    assert citizen.full_name == unicodedata.normalize("NFC", citizen.full_name)
    assert citizen.date_of_birth == DATE_OF_BIRTH
    assert citizen.sex == "female"
    assert citizen.commune_code == COMMUNE_CODE
    assert citizen.registered_by == "self"
    assert citizen.kyc_tier == KycTier.UNVERIFIED
    assert citizen.consent_version == registration.CONSENT_VERSION
    assert citizen.consent_at is not None
    assert citizen.citizen_id_last4 == form["citizen_id"][-4:]
    assert citizen.pin_hash is not None
    assert citizen.pin_hash.startswith("$argon2id$")
    with web_app.app_context():
        assert (
            vault().decrypt(citizen.citizen_id_ciphertext, purpose="citizen_id")
            == (form["citizen_id"])
        )
        assert citizen.citizen_id_lookup == vault().lookup_hash(
            form["citizen_id"], purpose="citizen_id"
        )
    with db_session(web_app) as session:
        wallet = session.get(Account, citizen.wallet_account_id)
        assert wallet is not None
        assert wallet.kind == AccountKind.CITIZEN_WALLET
        assert wallet.owner_ref == f"citizen:{citizen.id}"
        assert wallet.debits_must_not_exceed_credits

    # Signed in: the account page shows the masked number, never the whole of it.
    settings = web_client.get("/tai-khoan")
    assert settings.status_code == 200
    page = settings.get_data(as_text=True)
    assert f"•••• •••• {form['citizen_id'][-4:]}" in page
    assert form["citizen_id"] not in page


def test_edit_goes_back_to_the_first_step_with_the_values(web_client: FlaskClient) -> None:
    form = registration_form(action="edit")
    response = post_form(web_client, "/dang-ky", form)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Bước 1 trên 2" in html
    assert f'value="{form["citizen_id"]}"' in html
    assert '<option value="01" selected>Hà Nội</option>' in html


def test_a_search_that_finds_nothing_still_lists_the_whole_province(
    web_client: FlaskClient,
) -> None:
    form = registration_form(commune_query="khong co xa nay", action="search")
    response = post_form(web_client, "/dang-ky", form)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Không tìm thấy xã, phường nào" in html
    assert html.count('<option value="') > 100  # Hà Nội has 126 communes


def test_fifteen_year_olds_may_register(web_app: Flask, web_client: FlaskClient) -> None:
    response, form = register(web_client, **_born(_years_ago(15, days_later=-3)))
    assert response.status_code == 302
    assert find_citizen(web_app, form["phone"]) is not None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0912345678", "0912345678"),
        ("+84 912 345 678", "0912345678"),
        ("+84912345678", "0912345678"),
        ("84912345678", "0912345678"),
        ("0912.345.678", "0912345678"),
        ("(+84) 0912 345 678", "0912345678"),
        ("038-123-4567", "0381234567"),
    ],
)
def test_phone_numbers_are_normalised(app: Flask, raw: str, expected: str) -> None:
    with app.test_request_context():
        assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Vui lòng nhập số điện thoại"),
        ("0912 345 67", "đúng 10 chữ số"),
        ("0212345678", "phải bắt đầu bằng 03, 05, 07, 08 hoặc 09"),
        ("+1 202 555 0100", "Chỉ nhận số điện thoại di động Việt Nam"),
        ("09l2345678", "chỉ gồm các chữ số"),
        ("".join(chr(0xFF10 + int(d)) for d in "0912345678"), "chỉ gồm các chữ số"),  # full-width
    ],
)
def test_bad_phone_numbers_say_what_is_wrong(app: Flask, raw: str, message: str) -> None:
    with app.test_request_context(), pytest.raises(PhoneInvalid) as refused:
        normalise_phone(raw)
    assert message in refused.value.message


# --- Every validation error: a Vietnamese message, nothing stored -------------------------------

BAD_INPUTS: list[tuple[str, Callable[[], Form], str, str]] = [
    ("phone missing", lambda: {"phone": ""}, "phone", "Vui lòng nhập số điện thoại"),
    ("phone short", lambda: {"phone": "091234"}, "phone", "đúng 10 chữ số"),
    ("phone landline", lambda: {"phone": "0243 825 123"}, "phone", "phải bắt đầu bằng 03"),
    ("id missing", lambda: {"citizen_id": ""}, "citizen_id", "Vui lòng nhập số CCCD"),
    ("id short", lambda: {"citizen_id": "00115801234"}, "citizen_id", "đúng 12 chữ số"),
    ("id letters", lambda: {"citizen_id": "00115801234X"}, "citizen_id", "chỉ gồm các chữ số"),
    (
        "id province",
        lambda: {"citizen_id": "003158012345"},
        "citizen_id",
        "Mã tỉnh nơi sinh '003' không tồn tại",
    ),
    (
        "id year",
        lambda: {"citizen_id": citizen_id_for(dt.date(1959, 1, 1))},
        "citizen_id",
        "Số CCCD cho biết năm sinh 1959, nhưng ngày sinh đã nhập là năm 1958",
    ),
    (
        "id sex",
        lambda: {"citizen_id": citizen_id_for(DATE_OF_BIRTH, "male")},
        "citizen_id",
        "Số CCCD cho biết giới tính nam, nhưng giới tính đã nhập là nữ",
    ),
    ("name missing", lambda: {"full_name": "   "}, "full_name", "Vui lòng nhập họ và tên"),
    ("name short", lambda: {"full_name": "M"}, "full_name", "từ 2 đến 100 chữ cái"),
    ("name long", lambda: {"full_name": "Mai " * 30}, "full_name", "từ 2 đến 100 chữ cái"),
    ("name digits", lambda: {"full_name": "Hoàng Thị Mai 2"}, "full_name", "“2”"),
    ("name symbol", lambda: {"full_name": "Hoàng <Mai>"}, "full_name", "“<”"),
    ("name script", lambda: {"full_name": "Хоанг Май"}, "full_name", "chỉ gồm chữ cái"),
    ("birth missing", lambda: {"birth_year": ""}, "birth_day", "Vui lòng nhập đủ ngày, tháng"),
    ("birth letters", lambda: {"birth_month": "IX"}, "birth_day", "phải là số"),
    (
        "birth impossible",
        lambda: {"birth_day": "30", "birth_month": "2"},
        "birth_day",
        "Ngày 30 tháng 2 năm 1958 không có trên lịch",
    ),
    ("birth old", lambda: {"birth_year": "1899"}, "birth_day", "từ 1900 đến"),
    ("birth future", lambda: _born(TOMORROW), "birth_day", TOMORROW_MESSAGE),
    ("birth 14", lambda: _born(_years_ago(14, days_later=-3)), "birth_day", "Cần đủ 15 tuổi"),
    ("sex missing", lambda: {"sex": ""}, "sex", "Vui lòng chọn giới tính"),
    ("province unknown", lambda: {"province": "99"}, "province", "chọn tỉnh hoặc thành phố"),
    ("commune missing", lambda: {"commune": ""}, "commune", "chọn xã, phường"),
    (
        "commune elsewhere",
        lambda: {"commune": OTHER_PROVINCE_COMMUNE_CODE},
        "commune",
        "chọn xã, phường",
    ),
    ("pin short", lambda: {"pin": "2468", "pin_again": "2468"}, "pin", "đúng 6 chữ số"),
    ("pin letters", lambda: {"pin": "24681a", "pin_again": "24681a"}, "pin", "đúng 6 chữ số"),
    ("pin same", lambda: {"pin": "777777", "pin_again": "777777"}, "pin", "chữ số lặp lại"),
    ("pin up", lambda: {"pin": "123456", "pin_again": "123456"}, "pin", "dãy số liên tiếp"),
    ("pin down", lambda: {"pin": "654321", "pin_again": "654321"}, "pin", "dãy số liên tiếp"),
    ("pin run", lambda: {"pin": "345678", "pin_again": "345678"}, "pin", "dãy số liên tiếp"),
    ("pin birthday", lambda: {"pin": "050958", "pin_again": "050958"}, "pin", "ngày sinh"),
    (
        "pin phone",
        lambda: {"phone": "0912864209", "pin": "864209", "pin_again": "864209"},
        "pin",
        "6 số cuối của số điện thoại",
    ),
    ("pin differs", lambda: {"pin_again": "246831"}, "pin_again", "không giống nhau"),
    ("no consent", lambda: {"consent": ""}, "consent", "Cần bạn đồng ý"),
]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [pytest.param(case[1], case[2], case[3], id=case[0]) for case in BAD_INPUTS],
)
def test_each_bad_input_is_explained_and_nothing_is_stored(
    web_app: Flask,
    web_client: FlaskClient,
    overrides: Callable[[], Form],
    field: str,
    message: str,
) -> None:
    before = _counts(web_app)
    changes = overrides()
    if "phone" in changes and changes["phone"] == "0912864209":
        changes["phone"] = unique_phone()[:4] + "864209"
    response, form = register(web_client, **changes)

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert '<html lang="vi">' in html
    assert message in unescape(html)
    assert f'<p class="field-error" id="{field}-error">' in html
    assert f'<a href="#{field}">' in html  # the summary at the top links to the field
    # The PIN is never written back into the page.
    assert f'value="{form["pin"]}"' not in html
    assert _counts(web_app) == before


def test_several_mistakes_are_reported_at_once(web_app: Flask, web_client: FlaskClient) -> None:
    before = _counts(web_app)
    response, _form = register(web_client, phone="12", full_name="", consent="")
    assert response.status_code == 422
    # The page goes back to the first step, which shows its own two mistakes; the consent is
    # asked again on the second step.
    assert set(field_errors(response)) == {"phone", "full_name"}
    assert summary_links(response) == ["phone", "full_name"]
    assert _counts(web_app) == before

    fixed = {"phone": unique_phone(), "full_name": "Hoàng Thị Mai"}
    response, _form = register(web_client, **fixed, consent="", pin="1", pin_again="1")
    assert response.status_code == 422
    assert set(field_errors(response)) == {"pin", "consent"}
    assert summary_links(response) == ["pin", "consent"]
    assert _counts(web_app) == before


# --- Duplicates ---------------------------------------------------------------------------------


def test_a_phone_already_registered_is_refused(web_app: Flask) -> None:
    first, form = register(web_app.test_client())
    assert first.status_code == 302
    before = _counts(web_app)

    # Someone else, on another phone, with the same number typed another way.
    other = citizen_id_for()
    second, _ = register(web_app.test_client(), phone="+84 " + form["phone"][1:], citizen_id=other)
    assert second.status_code == 409
    html = second.get_data(as_text=True)
    assert "Số điện thoại này đã được dùng để mở một tài khoản" in html
    assert _counts(web_app) == before
    with db_session(web_app) as session, web_app.app_context():
        lookup = vault().lookup_hash(other, purpose="citizen_id")
        assert session.scalar(select(Citizen).where(Citizen.citizen_id_lookup == lookup)) is None


def test_an_id_number_already_registered_is_refused_without_saying_whose(
    web_app: Flask,
) -> None:
    first, form = register(web_app.test_client(), full_name="Nông Văn Bình", sex="male")
    assert first.status_code == 302
    before = _counts(web_app)

    second_phone = unique_phone()
    second, _ = register(
        web_app.test_client(),
        phone=second_phone,
        sex="male",
        citizen_id=form["citizen_id"],
        full_name="Lương Thị Hoa",
    )
    assert second.status_code == 409
    html = second.get_data(as_text=True)
    assert "Số CCCD này đã được đăng ký." in html
    assert "Nông Văn Bình" not in html
    assert form["phone"] not in html
    assert _counts(web_app) == before
    assert find_citizen(web_app, second_phone) is None


def test_duplicates_are_caught_at_the_first_step_already(web_app: Flask) -> None:
    _first, form = register(web_app.test_client())
    personal = {key: form[key] for key in registration.PERSONAL_FIELDS}
    response = post_form(web_app.test_client(), "/dang-ky", {**personal, "action": "details"})
    assert response.status_code == 409
    assert "Số điện thoại này đã được dùng" in response.get_data(as_text=True)


# --- CSRF ---------------------------------------------------------------------------------------


def test_registration_without_the_csrf_token_is_refused(
    web_app: Flask, web_client: FlaskClient
) -> None:
    # The suite's apps keep CSRF protection on, as production does.
    assert web_app.config.get("WTF_CSRF_ENABLED", True)
    before = _counts(web_app)
    form = registration_form()
    response = web_client.post("/dang-ky", data=form)
    assert response.status_code == 400
    assert "Biểu mẫu đã hết hạn" in response.get_data(as_text=True)
    assert _counts(web_app) == before

    forged = web_client.post("/dang-ky", data={**form, "csrf_token": "forged"})
    assert forged.status_code == 400
    assert _counts(web_app) == before
    assert find_citizen(web_app, form["phone"]) is None


# --- The ID number is never stored or logged in clear -------------------------------------------


def test_the_id_number_is_not_in_the_database_in_clear(
    web_app: Flask, web_client: FlaskClient, web_backend: str, database_url: str
) -> None:
    response, form = register(web_client)
    assert response.status_code == 302
    number = form["citizen_id"]
    citizen = find_citizen(web_app, form["phone"])
    assert citizen is not None

    with db_session(web_app) as session:
        if web_backend == "postgresql":
            row_text = session.scalar(
                text("SELECT c::text FROM citizens AS c WHERE c.id = :id"), {"id": citizen.id}
            )
        else:
            row = session.execute(
                text("SELECT * FROM citizens WHERE id = :id"), {"id": citizen.id}
            ).one()
            row_text = repr(tuple(row))
    assert row_text is not None
    assert form["phone"] in row_text  # the check can see the row's contents
    assert number not in row_text
    assert number.encode("ascii").hex() not in row_text
    assert number[:8] not in row_text  # not even the hidden digits

    if web_backend == "sqlite":
        # Every byte SQLite wrote: the database file and its write-ahead log.
        path = Path(database_url.removeprefix("sqlite:///"))
        written = b"".join(
            candidate.read_bytes()
            for candidate in (path, path.with_name(path.name + "-wal"))
            if candidate.exists()
        )
        assert form["phone"].encode() in written
        assert number.encode("ascii") not in written


def test_the_id_number_is_never_logged(
    web_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response, form = register(web_client)
    assert response.status_code == 302
    duplicate, _ = register(web_client.application.test_client(), citizen_id=form["citizen_id"])
    assert duplicate.status_code == 409
    other_browser = web_client.application.test_client()
    assert sign_in(other_browser, form["phone"], form["pin"]).status_code == 302
    assert other_browser.get("/tai-khoan").status_code == 200

    assert any("registered" in record.getMessage() for record in caplog.records)
    logged = caplog.text + " ".join(repr(record.args) for record in caplog.records)
    assert form["citizen_id"] not in logged


# --- On the citizen's behalf --------------------------------------------------------------------


def test_an_agent_registers_a_citizen_who_has_no_pin_yet(
    web_app: Flask, web_client: FlaskClient
) -> None:
    form = registration_form(pin="", pin_again="")
    with web_app.test_request_context(), db_session(web_app) as session:
        citizen = registration.register_on_behalf(
            session, form, "agent:12", dt.datetime.now(dt.UTC)
        )
        session.commit()
        assert citizen.pin_hash is None
        assert citizen.registered_by == "agent:12"
        assert citizen.kyc_tier == KycTier.UNVERIFIED

    # Nobody can sign in until the citizen sets a PIN, and the answer does not say why.
    response = sign_in(web_client, form["phone"], "246813")
    assert response.status_code == 422
    assert "Số điện thoại hoặc mã PIN không đúng." in response.get_data(as_text=True)


@pytest.mark.parametrize("registered_by", ["self", "agent:", "agent:0", "admin:1", "team:7 "])
def test_on_behalf_needs_an_agent_or_team_member(web_app: Flask, registered_by: str) -> None:
    with (
        web_app.test_request_context(),
        db_session(web_app) as session,
        pytest.raises(ValueError, match="registered_by"),
    ):
        registration.register_on_behalf(
            session, registration_form(), registered_by, dt.datetime.now(dt.UTC)
        )


def test_on_behalf_checks_the_same_fields(web_app: Flask) -> None:
    form = registration_form(citizen_id="123", consent="")
    with (
        web_app.test_request_context(),
        db_session(web_app) as session,
        pytest.raises(registration.RegistrationInvalid) as refused,
    ):
        registration.register_on_behalf(session, form, "team:7", dt.datetime.now(dt.UTC))
    assert set(refused.value.errors) == {"citizen_id", "consent"}


def test_pin_hashes_use_argon2id_with_the_configured_cost(
    web_app: Flask, web_client: FlaskClient
) -> None:
    _response, form = register(web_client)
    citizen = find_citizen(web_app, form["phone"])
    assert citizen is not None and citizen.pin_hash is not None
    assert not PIN_HASHER.check_needs_rehash(citizen.pin_hash)
    # The hash is of a keyed digest of the PIN, not of the PIN itself: without the key folder
    # a copy of the database cannot be used to try the million possible PINs.
    with pytest.raises(VerifyMismatchError):
        PIN_HASHER.verify(citizen.pin_hash, form["pin"])


def test_registration_page_needs_no_script_or_inline_style(web_client: FlaskClient) -> None:
    first = web_client.get("/dang-ky").get_data(as_text=True)
    form = registration_form(action="details")
    second = post_form(web_client, "/dang-ky", form).get_data(as_text=True)
    for html in (first, second):
        assert "<script" not in html
        assert "<style" not in html
        assert " style=" not in html
    assert csrf_token(web_client, "/dang-ky")


def test_a_signed_in_citizen_is_sent_on_from_the_registration_page(
    web_client: FlaskClient,
) -> None:
    response, _form = register(web_client)
    assert response.status_code == 302
    again = web_client.get("/dang-ky")
    assert again.status_code == 302
    assert again.headers["Location"] == "/vi"


def test_the_province_list_is_the_official_one(web_client: FlaskClient) -> None:
    html = web_client.get("/dang-ky").get_data(as_text=True)
    assert html.count('<option value="') == 1 + 34  # the prompt, then the 34 provinces
    assert f'<option value="{PROVINCE_CODE}">' in html


def test_the_provinces_are_listed_in_vietnamese_alphabetical_order(
    web_client: FlaskClient,
) -> None:
    html = web_client.get("/dang-ky").get_data(as_text=True)
    listed = re.findall(r'<option value="\d+"[^>]*>([^<]+)</option>', html)
    assert len(listed) == 34
    # "Hà Nội" before "Huế" (a bare byte order put Huế first), "Lạng Sơn, Lào Cai, Lâm Đồng"
    # (a, then â; tones only between otherwise equal words), đ after d.
    for earlier, later in [
        ("Hà Nội", "Huế"),
        ("Lạng Sơn", "Lào Cai"),
        ("Lào Cai", "Lâm Đồng"),
        ("Cao Bằng", "Đà Nẵng"),
        ("Đồng Tháp", "Gia Lai"),
    ]:
        assert listed.index(earlier) < listed.index(later), (earlier, later)
    assert listed == sorted(listed, key=vietnamese_sort_key)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["Hưng", "Hung", "Hùng", "Hụng"], ["Hung", "Hùng", "Hụng", "Hưng"]),
        (["đa", "da", "dạ", "ăn", "an", "ân"], ["an", "ăn", "ân", "da", "dạ", "đa"]),
        (["ơi", "ôi", "oi"], ["oi", "ôi", "ơi"]),
    ],
)
def test_vietnamese_sort_key_orders_letters_then_tones(
    names: list[str], expected: list[str]
) -> None:
    assert sorted(names, key=vietnamese_sort_key) == expected
