"""Reading a beneficiary list: CSV (UTF-8, BOM or not, comma or semicolon) and Excel, Vietnamese
or English headers, and hostile files (formulas, huge files, zip bombs, wrong headers, binary)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import pytest

from kiosk import create_app
from kiosk.welfare.upload import (
    LIST_ROWS_MAX,
    UPLOAD_SIZE_MAX_BYTES,
    Column,
    ListUnreadable,
    parse_list,
)
from tests.welfare.support import HEADER, csv_bytes, xlsx_bytes

LINE = ("001158012345", "Hoàng Thị Mai", "1.500.000", "0912 345 678")


@pytest.fixture(autouse=True)
def request_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Messages are translated: they need an app (no database is touched)."""
    app = create_app(
        {
            "TESTING": True,
            "SOFTATM_ENV": "test",
            "DATABASE_URL": "sqlite://",
            "SECRET_KEY": "test-secret-key-that-is-long-enough-for-production",
            "KEYS_DIR": tmp_path_factory.mktemp("keys"),
        }
    )
    with app.test_request_context():
        yield


def test_csv_with_bom_and_vietnamese_headers_is_read() -> None:
    [row] = parse_list("ds.csv", csv_bytes([LINE]))
    assert row.line == 2
    assert row.cells == {
        Column.CITIZEN_ID: "001158012345",
        Column.FULL_NAME: "Hoàng Thị Mai",
        Column.AMOUNT: "1.500.000",
        Column.PHONE: "0912 345 678",
    }


def test_csv_without_bom_with_semicolons_and_english_headers_is_read() -> None:
    data = "Citizen ID;Full name;Amount\r\n001158012345;Hoàng Thị Mai;500000\r\n".encode()
    [row] = parse_list("ds.csv", data)
    assert row.cells[Column.AMOUNT] == "500000"
    assert Column.PHONE not in row.cells


def test_headers_match_without_case_diacritics_or_punctuation() -> None:
    data = csv_bytes([LINE], header=("SO CCCD:", "họ tên", "Số tiền (đồng)", "SĐT"))
    [row] = parse_list("ds.csv", data)
    assert row.cells[Column.PHONE] == "0912 345 678"


def test_blank_lines_are_skipped_and_line_numbers_kept() -> None:
    data = csv_bytes([LINE, ("", "", "", ""), ("001076054321", "Nông Văn Bình", "500000", "")])
    assert [row.line for row in parse_list("ds.csv", data)] == [2, 4]


@pytest.mark.parametrize(
    "header",
    [
        ("Họ và tên", "Số tiền"),
        ("CCCD", "Tên", "Tiền"),
        ("A", "B", "C", "D"),
    ],
)
def test_missing_columns_are_refused_naming_them(header: tuple[str, ...]) -> None:
    with pytest.raises(ListUnreadable, match="Thiếu"):
        parse_list("ds.csv", csv_bytes([LINE[: len(header)]], header=header))


def test_a_column_twice_is_refused() -> None:
    with pytest.raises(ListUnreadable, match="hai lần"):
        parse_list("ds.csv", csv_bytes([(*LINE, "x")], header=(*HEADER, "CCCD")))


def test_a_file_over_the_size_limit_is_refused_unread() -> None:
    with pytest.raises(ListUnreadable, match="quá lớn"):
        parse_list("ds.csv", csv_bytes([LINE]) + b"x" * UPLOAD_SIZE_MAX_BYTES)


def test_more_rows_than_the_limit_are_refused() -> None:
    line = ("001158012345", "A", "1", "")
    with pytest.raises(ListUnreadable, match=str(LIST_ROWS_MAX)):
        parse_list("ds.csv", csv_bytes([line] * (LIST_ROWS_MAX + 1)))


def test_a_csv_in_another_encoding_is_refused_with_how_to_save_it() -> None:
    # An old Windows code page: "à" is one byte, 0xE0, which UTF-8 does not allow there.
    data = "So CCCD,Ho va ten,So tien\r\n001158012345,Hoàng,1\r\n".encode("cp1252")
    with pytest.raises(ListUnreadable, match="UTF-8"):
        parse_list("ds.csv", data)


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("ds.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100),
        ("ds.csv", b""),
        ("ds.csv", "Số CCCD,Họ và tên,Số tiền\r\n".encode()),
        ("ds.csv", b"\x00\x01\x02binary"),
        ("ds.xlsx", b"PK\x03\x04not really a zip"),
        ("ds.csv", 'Số CCCD,Họ và tên,Số tiền\r\n"001158012345,unclosed\r\n'.encode()),
    ],
)
def test_files_that_are_not_lists_are_refused(filename: str, data: bytes) -> None:
    with pytest.raises(ListUnreadable):
        parse_list(filename, data)


def test_formulas_reach_validation_as_plain_text_never_evaluated() -> None:
    hostile = ("=1+1", '=HYPERLINK("http://x","y")', "@SUM(A1)", "+84912345678")
    [row] = parse_list("ds.csv", csv_bytes([hostile]))
    assert row.cells[Column.CITIZEN_ID] == "=1+1"
    assert row.cells[Column.AMOUNT] == "@SUM(A1)"


def test_xlsx_is_read_and_numbers_get_their_leading_zeros_back() -> None:
    data = xlsx_bytes([(1158012345, "Hoàng Thị Mai", 1500000, 912345678)])
    [row] = parse_list("ds.xlsx", data)
    assert row.cells == {
        Column.CITIZEN_ID: "001158012345",
        Column.FULL_NAME: "Hoàng Thị Mai",
        Column.AMOUNT: "1500000",
        Column.PHONE: "0912345678",
    }


def test_xlsx_formula_cells_are_read_as_their_text_not_their_value() -> None:
    data = xlsx_bytes([("001158012345", "=A1&A1", "=1000*500", "")])
    [row] = parse_list("ds.xlsx", data)
    assert row.cells[Column.FULL_NAME] == "=A1&A1"
    assert row.cells[Column.AMOUNT] == "=1000*500"


def test_xlsx_whose_contents_unpack_too_large_is_refused_unread() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\x00" * (30 * 1024 * 1024))
    data = buffer.getvalue()
    assert len(data) < UPLOAD_SIZE_MAX_BYTES
    with pytest.raises(ListUnreadable, match="giải nén"):
        parse_list("ds.xlsx", data)


def test_xlsx_with_wrong_headers_is_refused() -> None:
    with pytest.raises(ListUnreadable, match="Thiếu"):
        parse_list("ds.xlsx", xlsx_bytes([LINE], header=("X", "Y", "Z", "W")))
