"""English as the second language: a complete catalogue, and the footer's language switch.

The compiled catalogue (.mo) is built, never committed: `make translations` builds it, and the
`compiled_catalogues` fixture below does the same so that `pytest` alone works on a fresh clone.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, session
from flask.testing import FlaskClient
from test_citizen_helpers import csrf_token
from werkzeug.test import TestResponse

from kiosk import i18n
from kiosk.citizen_id import CitizenIdError, Sex, validate_citizen_id
from kiosk.vietqr import VietQrError, parse_merchant_qr

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS_DIR = PROJECT_ROOT / "kiosk" / "translations"
ENGLISH_PO = TRANSLATIONS_DIR / "en" / "LC_MESSAGES" / "messages.po"
# What `make translations-update` passes besides babel.cfg (Babel < 2.18 ignores its keywords).
EXTRACT_KEYWORDS = ["-k", "lazy_gettext", "-k", "lazy_ngettext:1,2"]
# ... and the folders it skips (by default Babel skips every folder whose name starts with "_").
EXTRACT_IGNORE_DIRS = ["--ignore-dirs=.* __pycache__"]
PLACEHOLDER = re.compile(r"%\((\w+)\)([sd])")
HOME = "/"


def _read_catalog(path: Path) -> Catalog:
    with path.open("rb") as po_file:
        return read_po(po_file)


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogues() -> None:
    """Compile each .po that is newer than its .mo, as `make translations` does."""
    for po_path in TRANSLATIONS_DIR.glob("*/LC_MESSAGES/messages.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        compiled = io.BytesIO()
        write_mo(compiled, _read_catalog(po_path))
        # Written aside and renamed, so that a running app never reads half a file.
        partial = mo_path.with_name(f"{mo_path.name}.{os.getpid()}.partial")
        partial.write_bytes(compiled.getvalue())
        partial.replace(mo_path)
    # Flask-Babel keeps each language's catalogue for the life of the process: forget one loaded
    # before the .mo existed (by a test elsewhere that asked for English).
    domain = vars(i18n.babel).get("domain_instance")  # a cached property, made on first use
    if domain is not None:
        domain.cache.clear()


@pytest.fixture
def web_backend() -> str:
    """The words on a page do not depend on the database: SQLite is enough here."""
    return "sqlite"


def _messages() -> list[Message]:
    return [message for message in _read_catalog(ENGLISH_PO) if message.id]


def _ids(message: Message) -> tuple[str, ...]:
    return message.id if isinstance(message.id, tuple) else (message.id,)


def _strings(message: Message) -> tuple[str, ...]:
    return message.string if isinstance(message.string, tuple) else (message.string,)


def _placeholders(text: str) -> set[str]:
    return {f"%({name}){kind}" for name, kind in PLACEHOLDER.findall(text)}


def _choose(client: FlaskClient, language: str, next_path: str = HOME) -> TestResponse:
    token = csrf_token(client, next_path)
    return client.post("/ngon-ngu", data={"lang": language, "next": next_path, "csrf_token": token})


def _page(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


# --- The catalogue --------------------------------------------------------------------------------


def test_every_english_message_is_translated_and_none_is_fuzzy() -> None:
    catalog = _read_catalog(ENGLISH_PO)
    assert not catalog.fuzzy, "the catalogue's header is marked fuzzy"
    messages = _messages()
    assert len(messages) > 400
    assert [message.id for message in messages if not all(_strings(message))] == []
    assert [message.id for message in messages if message.fuzzy] == []


def test_placeholders_of_each_message_survive_translation() -> None:
    for message in _messages():
        for message_id, string in zip(_ids(message), _strings(message), strict=False):
            assert _placeholders(string) == _placeholders(message_id), message_id
            # Templates always %-format their messages, so a stray % would break the page.
            values = {name: 1 for name, _kind in PLACEHOLDER.findall(message_id)}
            assert string % values


def test_babel_finds_no_error_in_the_catalogue() -> None:
    # Babel's own checks: python-format messages agree with their ids, plural forms count.
    assert [(message.id, errors) for message, errors in _read_catalog(ENGLISH_PO).check()] == []


def test_the_catalogue_holds_every_message_of_the_code(tmp_path: Path) -> None:
    # Extract as `make translations-update` does: a message added to a template or a module
    # without updating the catalogue would show in Vietnamese to English readers.
    template = tmp_path / "messages.pot"
    # babel.cfg's patterns are relative to the folder searched: the project root.
    arguments = [
        "-F",
        str(PROJECT_ROOT / "babel.cfg"),
        *EXTRACT_KEYWORDS,
        *EXTRACT_IGNORE_DIRS,
        "-o",
        str(template),
    ]
    CommandLineInterface().run(["pybabel", "-q", "extract", *arguments, str(PROJECT_ROOT)])
    in_code = {message.id for message in _read_catalog(template) if message.id}
    in_catalogue = {message.id for message in _messages()}
    assert sorted(in_code - in_catalogue) == [], "run `make translations-update`, then translate"
    assert sorted(in_catalogue - in_code) == [], "run `make translations-update` (obsolete entries)"


# --- Switching language ---------------------------------------------------------------------------


def test_the_site_speaks_vietnamese_until_asked_otherwise(web_client: FlaskClient) -> None:
    html = _page(web_client, HOME)
    assert '<html lang="vi">' in html
    assert "Dành cho người dân" in html
    assert 'lang="vi" aria-current="true">Tiếng Việt</button>' in html


def test_switching_to_english_and_back(web_client: FlaskClient) -> None:
    response = _choose(web_client, "en")
    assert response.status_code == 302
    assert response.headers["Location"] == HOME

    home = _page(web_client, HOME)
    assert '<html lang="en">' in home
    assert "For residents" in home
    assert "Withdraw cash, deposit money and pay right at your commune post office" in home
    assert "Dành cho người dân" not in home
    assert 'lang="en" aria-current="true">English</button>' in home

    sign_in = _page(web_client, "/dang-nhap")
    assert '<html lang="en">' in sign_in
    assert "Mobile phone number" in sign_in
    assert "PIN (6 digits)" in sign_in
    assert "Số điện thoại di động" not in sign_in

    register = _page(web_client, "/dang-ky")
    assert "Step 1 of 2: your details" in register
    assert "Citizen ID number (CCCD)" in register
    assert "Bước 1 trên 2" not in register

    assert _choose(web_client, "vi").headers["Location"] == HOME
    home = _page(web_client, HOME)
    assert '<html lang="vi">' in home
    assert "Dành cho người dân" in home
    assert "For residents" not in home
    assert "Số điện thoại di động" in _page(web_client, "/dang-nhap")


def test_messages_of_the_shared_form_macros_are_translated(web_client: FlaskClient) -> None:
    # The form macros live in templates/_macros, a folder Babel skips unless told otherwise.
    _choose(web_client, "en", "/dang-nhap")
    token = csrf_token(web_client, "/dang-nhap")
    refused = web_client.post(
        "/dang-nhap", data={"phone": "", "pin": "", "csrf_token": token}
    ).get_data(as_text=True)
    assert "Could not sign you in:" in refused
    token = csrf_token(web_client, "/dang-ky")
    refused = web_client.post("/dang-ky", data={"csrf_token": token}).get_data(as_text=True)
    assert "Not sent yet. Please fix:" in refused
    assert "Chưa gửi được" not in refused


def test_the_switch_comes_back_to_the_same_page(web_client: FlaskClient) -> None:
    page = "/dang-nhap?next=/tai-khoan"
    html = _page(web_client, page)
    assert '<input type="hidden" name="next" value="/dang-nhap?next=/tai-khoan">' in html
    response = _choose(web_client, "en", page)
    assert response.status_code == 302
    assert response.headers["Location"] == page


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\nSet-Cookie: lang=x",
        "javascript:alert(1)",
        "dang-nhap",
        "",
    ],
)
def test_a_next_that_is_not_a_path_here_goes_home(web_client: FlaskClient, target: str) -> None:
    token = csrf_token(web_client, HOME)
    response = web_client.post(
        "/ngon-ngu", data={"lang": "en", "next": target, "csrf_token": token}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == HOME
    # The language is still switched: only the way back is refused.
    assert '<html lang="en">' in _page(web_client, HOME)


@pytest.mark.parametrize("language", ["fr", "EN", "", "en-US", "vi; en"])
def test_an_unknown_language_is_ignored(web_client: FlaskClient, language: str) -> None:
    _choose(web_client, "en")
    response = _choose(web_client, language)
    assert response.status_code == 302
    assert '<html lang="en">' in _page(web_client, HOME)


def test_switching_needs_the_csrf_token(web_app: Flask, web_client: FlaskClient) -> None:
    # The suite's apps keep CSRF protection on, as production does.
    assert web_app.config.get("WTF_CSRF_ENABLED", True)
    missing = web_client.post("/ngon-ngu", data={"lang": "en", "next": HOME})
    assert missing.status_code == 400
    forged = web_client.post("/ngon-ngu", data={"lang": "en", "next": HOME, "csrf_token": "x"})
    assert forged.status_code == 400
    assert '<html lang="vi">' in _page(web_client, HOME)


def test_the_switch_works_without_script_or_inline_style(web_client: FlaskClient) -> None:
    footer = _page(web_client, HOME).split('<footer class="site-footer">')[1]
    assert '<form class="language-switch" method="post" action="/ngon-ngu"' in footer
    assert 'name="csrf_token"' in footer
    assert "<script" not in footer
    assert "style=" not in footer


# --- Messages from Python code --------------------------------------------------------------------


def test_error_pages_and_form_errors_are_translated(web_client: FlaskClient) -> None:
    _choose(web_client, "en")
    missing = web_client.get("/no-such-page")
    assert missing.status_code == 404
    html = missing.get_data(as_text=True)
    assert "Page not found" in html
    assert "Error code: 404" in html

    token = csrf_token(web_client, "/dang-nhap")
    refused = web_client.post(
        "/dang-nhap", data={"phone": "0912345678", "pin": "975310", "csrf_token": token}
    )
    assert "The phone number or PIN is wrong." in refused.get_data(as_text=True)


def test_messages_built_from_parts_are_translated_whole(web_app: Flask) -> None:
    with web_app.test_request_context():
        session["lang"] = "en"
        with pytest.raises(VietQrError) as qr_error:
            parse_merchant_qr("")
        with pytest.raises(CitizenIdError) as id_error:
            validate_citizen_id("001185012345", date_of_birth=dt.date(1985, 3, 1), sex=Sex.MALE)
    assert qr_error.value.message == "The QR code is empty. Please scan it again."
    assert id_error.value.message == (
        "The citizen ID number says the sex is female, but the sex entered is male."
    )
