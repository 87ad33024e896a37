"""The download writers: CSV with a BOM and formula escaping, .xlsx with escaped text."""

import csv
import datetime as dt
import io

import openpyxl
import pytest

from kiosk.adoption.exports import Sheet, escape_cell, safe_filename, write_csv, write_xlsx


@pytest.mark.parametrize(
    "dangerous",
    ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "=cmd|' /C calc'!A0"],
)
def test_text_that_could_start_a_formula_gets_an_apostrophe(dangerous: str) -> None:
    assert escape_cell(dangerous) == "'" + dangerous


@pytest.mark.parametrize("harmless", ["Xã Tân Lập", "92,5%", "", " =not first", "'already"])
def test_ordinary_text_is_unchanged(harmless: str) -> None:
    assert escape_cell(harmless) == harmless


@pytest.mark.parametrize("number", [-5, -0.25, 0, 12, 3.5])
def test_numbers_are_never_escaped(number: float) -> None:
    assert escape_cell(number) == number


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_csv_starts_with_a_byte_order_mark_and_round_trips_vietnamese() -> None:
    data = write_csv([["Xã", "Số người"], ["Phường Văn Miếu - Quốc Tử Giám", 1234]])
    assert data.startswith(b"\xef\xbb\xbf")
    assert read_csv(data) == [["Xã", "Số người"], ["Phường Văn Miếu - Quốc Tử Giám", "1234"]]


def test_csv_escapes_formula_text_but_keeps_negative_numbers() -> None:
    data = write_csv([["=1+2", -5, "-5", "@x", 'Ghi chú, có dấu phẩy "và ngoặc"']])
    assert read_csv(data) == [["'=1+2", "-5", "'-5", "'@x", 'Ghi chú, có dấu phẩy "và ngoặc"']]


def test_csv_writes_dates_local_times_and_empty_cells() -> None:
    moment = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)
    data = write_csv([[dt.date(2026, 11, 1), moment, None, True]])
    assert read_csv(data) == [["2026-11-01", "2026-11-23 10:00", "", "1"]]


def test_csv_uses_crlf_line_ends() -> None:
    assert write_csv([["a"], ["b"]]).endswith(b"a\r\nb\r\n")


def test_xlsx_has_every_sheet_with_escaped_text_and_real_numbers() -> None:
    data = write_xlsx(
        [
            Sheet(
                "Số liệu",
                ["Xã", "Tử số", "Tỷ lệ (%)"],
                [['=HYPERLINK("http://x")', 185, 92.5], ["Xã Tân Lập", -3, None]],
                preamble=["Báo cáo tháng 11/2026"],
            ),
            Sheet(
                "Định nghĩa chỉ số [v1]: dài hơn ba mươi mốt ký tự",
                ["Chỉ số", "Cách tính"],
                [["Tài khoản", "+ đếm"]],
            ),
        ]
    )
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    assert workbook.sheetnames == ["Số liệu", "Định nghĩa chỉ số -v1-- dài hơn"]
    figures = workbook["Số liệu"]
    rows = list(figures.iter_rows(values_only=True))
    assert rows[0][0] == "Báo cáo tháng 11/2026"
    assert rows[2] == ("Xã", "Tử số", "Tỷ lệ (%)")
    assert rows[3] == ('\'=HYPERLINK("http://x")', 185, 92.5)
    assert rows[4] == ("Xã Tân Lập", -3, None)
    assert figures.cell(row=4, column=1).data_type == "s"
    definitions = workbook.worksheets[1]
    assert list(definitions.iter_rows(values_only=True))[1] == ("Tài khoản", "'+ đếm")


def test_xlsx_drops_characters_a_workbook_cannot_hold() -> None:
    data = write_xlsx([Sheet("A", ["x"], [["a\x01b"]])])
    assert openpyxl.load_workbook(io.BytesIO(data))["A"]["A2"].value == "ab"


def test_xlsx_dates_are_local_and_without_time_zone() -> None:
    moment = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)
    data = write_xlsx([Sheet("A", ["Lúc"], [[moment]])])
    local = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC).replace(tzinfo=None)
    assert openpyxl.load_workbook(io.BytesIO(data))["A"]["A2"].value == local


def test_download_file_names_are_plain_ascii() -> None:
    assert safe_filename("chi-so-00226-2026-Q4.csv") == "chi-so-00226-2026-Q4.csv"
    assert safe_filename('Xã "A"\r\n.csv') == "X-A-.csv"
