"""Reading an uploaded beneficiary list: CSV (UTF-8, with or without a BOM) or Excel (.xlsx).

This module only turns a file into rows of text cells under known column names, or refuses the
whole file with one message saying what to fix (too big, not UTF-8, an old .xls, columns
missing). Checking each row is `kiosk.welfare.validation`'s job. Everything is bounded: the
file's size, the unpacked size of a workbook, the number of rows and the length of a cell.

Excel stores a long number typed without a leading apostrophe as a number, dropping its leading
zeros (001158012345 becomes 1158012345). A citizen ID is always 12 digits and a mobile number 10,
so a whole-number cell is written back with its zeros; anything else is read as the text shown.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
import unicodedata
import zipfile
from dataclasses import dataclass

from flask_babel import gettext as _  # type: ignore[import-untyped]

UPLOAD_SIZE_MAX_BYTES = 1024 * 1024
# A workbook is a zip: its parts unpacked may not exceed this (a zip bomb is refused unread).
XLSX_UNPACKED_SIZE_MAX_BYTES = 20 * 1024 * 1024
LIST_ROWS_MAX = 5_000
LIST_COLUMNS_MAX = 30
CELL_LENGTH_MAX_CHARS = 200
CITIZEN_ID_DIGITS = 12
PHONE_DIGITS = 10
XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls format


class Column(enum.StrEnum):
    CITIZEN_ID = "citizen_id"
    FULL_NAME = "full_name"
    AMOUNT = "amount"
    PHONE = "phone"


REQUIRED_COLUMNS = (Column.CITIZEN_ID, Column.FULL_NAME, Column.AMOUNT)

# Headers compared without diacritics, case, spaces or punctuation: "Số CCCD", "so cccd" and
# "SỐ CCCD:" are the same column.
HEADERS: dict[str, Column] = {
    "socccd": Column.CITIZEN_ID,
    "cccd": Column.CITIZEN_ID,
    "socancuoc": Column.CITIZEN_ID,
    "socancuoccongdan": Column.CITIZEN_ID,
    "sodinhdanh": Column.CITIZEN_ID,
    "sodinhdanhcanhan": Column.CITIZEN_ID,
    "citizenid": Column.CITIZEN_ID,
    "idnumber": Column.CITIZEN_ID,
    "hovaten": Column.FULL_NAME,
    "hoten": Column.FULL_NAME,
    "ten": Column.FULL_NAME,
    "name": Column.FULL_NAME,
    "fullname": Column.FULL_NAME,
    "sotien": Column.AMOUNT,
    "sotiendong": Column.AMOUNT,
    "sotienvnd": Column.AMOUNT,
    "amount": Column.AMOUNT,
    "amountvnd": Column.AMOUNT,
    "sodienthoai": Column.PHONE,
    "dienthoai": Column.PHONE,
    "sdt": Column.PHONE,
    "phone": Column.PHONE,
    "phonenumber": Column.PHONE,
}

COLUMN_HEADINGS = {
    Column.CITIZEN_ID: "Số CCCD",
    Column.FULL_NAME: "Họ và tên",
    Column.AMOUNT: "Số tiền",
    Column.PHONE: "Số điện thoại",
}


class ListUnreadable(Exception):
    """The file cannot be read as a list at all; ``message`` says what to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class RawRow:
    """One line of the list: its line number in the file (the header is line 1) and its cells."""

    line: int
    cells: dict[Column, str]


def header_key(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(
        character.lower() for character in decomposed if character.isascii() and character.isalnum()
    )


def _shown(text: str) -> str:
    """A cell quoted back in a message: short, and without anything invisible."""
    printable = "".join(character if character.isprintable() else "?" for character in text)
    return printable[:40] + ("…" if len(printable) > 40 else "")


def _columns(header: list[str]) -> dict[Column, int]:
    found: dict[Column, int] = {}
    for index, heading in enumerate(header[:LIST_COLUMNS_MAX]):
        column = HEADERS.get(header_key(heading))
        if column is None:
            continue
        if column in found:
            raise ListUnreadable(
                _(
                    "Cột “%(column)s” xuất hiện hai lần ở dòng tiêu đề. Mỗi cột chỉ có một lần.",
                    column=COLUMN_HEADINGS[column],
                )
            )
        found[column] = index
    missing = [COLUMN_HEADINGS[column] for column in REQUIRED_COLUMNS if column not in found]
    if missing:
        seen = ", ".join(f"“{_shown(heading)}”" for heading in header[:8] if heading.strip())
        raise ListUnreadable(
            _(
                "Dòng đầu tiên phải là dòng tiêu đề với các cột: Số CCCD, Họ và tên, Số tiền "
                "(và Số điện thoại nếu có). Thiếu: %(missing)s. Dòng đầu của tệp có: %(seen)s.",
                missing=", ".join(missing),
                seen=seen or _("(trống)"),
            )
        )
    return found


def _rows(lines: list[list[str]]) -> list[RawRow]:
    """Rows under the header, blank lines skipped, with at most LIST_ROWS_MAX of them."""
    if not lines:
        raise ListUnreadable(_("Tệp không có dòng nào."))
    columns = _columns(lines[0])
    rows: list[RawRow] = []
    for line_number, line in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in line):
            continue
        if len(rows) >= LIST_ROWS_MAX:
            raise ListUnreadable(
                _(
                    "Danh sách có hơn %(max)d người. Hãy chia thành nhiều đợt chi trả.",
                    max=LIST_ROWS_MAX,
                )
            )
        cells = {
            column: (line[index] if index < len(line) else "")[:CELL_LENGTH_MAX_CHARS]
            for column, index in columns.items()
        }
        rows.append(RawRow(line_number, cells))
    if not rows:
        raise ListUnreadable(_("Danh sách chưa có người nào (chỉ có dòng tiêu đề)."))
    return rows


def parse_list(filename: str, data: bytes) -> list[RawRow]:
    """The rows of an uploaded list, or `ListUnreadable`."""
    if not data:
        raise ListUnreadable(_("Chưa chọn tệp, hoặc tệp trống."))
    if len(data) > UPLOAD_SIZE_MAX_BYTES:
        raise ListUnreadable(
            _(
                "Tệp quá lớn (tối đa %(max)d KB). Hãy bỏ các cột và trang tính không cần.",
                max=UPLOAD_SIZE_MAX_BYTES // 1024,
            )
        )
    if data.startswith(OLE_MAGIC) or filename.lower().endswith(".xls"):
        raise ListUnreadable(
            _("Tệp Excel 97-2003 (.xls) chưa đọc được. Hãy lưu lại dưới dạng .xlsx hoặc CSV.")
        )
    if data.startswith(XLSX_MAGIC):
        return _rows(_xlsx_lines(data))
    return _rows(_csv_lines(data))


# --- CSV -------------------------------------------------------------------------------------


def _csv_lines(data: bytes) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ListUnreadable(
            _(
                "Tệp CSV không phải mã UTF-8 nên chữ có dấu sẽ bị sai. Trong Excel chọn "
                "“Lưu thành” → “CSV UTF-8 (phân cách bằng dấu phẩy)”, hoặc tải lên tệp .xlsx."
            )
        ) from None
    if "\x00" in text:
        raise ListUnreadable(_("Tệp không phải tệp CSV hay Excel (.xlsx)."))
    first_line = text.split("\n", 1)[0]
    # Excel set to Vietnamese separates with ";" (the comma is the decimal mark there).
    delimiter = max((",", ";", "\t"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    lines: list[list[str]] = []
    try:
        for line in reader:
            if len(lines) > LIST_ROWS_MAX + 1:
                break
            lines.append(line[:LIST_COLUMNS_MAX])
    except csv.Error as error:
        raise ListUnreadable(
            _(
                "Tệp CSV bị lỗi ở dòng %(line)d (dấu ngoặc kép không đóng?).",
                line=reader.line_num,
            )
        ) from error
    return lines


# --- Excel -----------------------------------------------------------------------------------


def _xlsx_lines(data: bytes) -> list[list[str]]:
    # Imported here: only an Excel upload needs it.
    from openpyxl import load_workbook  # type: ignore[import-untyped]  # noqa: PLC0415

    unreadable = ListUnreadable(_("Không mở được tệp Excel này. Hãy lưu lại dưới dạng .xlsx."))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError):
        raise unreadable from None
    if unpacked > XLSX_UNPACKED_SIZE_MAX_BYTES:
        raise ListUnreadable(_("Tệp Excel quá lớn khi giải nén. Hãy chỉ giữ trang tính danh sách."))
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception:  # openpyxl raises many kinds for a broken workbook
        raise unreadable from None
    try:
        sheet = workbook.worksheets[0]
        lines: list[list[str]] = []
        for values in sheet.iter_rows(max_col=LIST_COLUMNS_MAX, values_only=True):
            if len(lines) > LIST_ROWS_MAX + 1:
                break
            lines.append([_cell_text(value) for value in values])
    except Exception:
        raise unreadable from None
    finally:
        workbook.close()
    return lines


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        digits = str(value)
        # A number that lost its leading zeros: an ID (12 digits) or a mobile number (10).
        if value > 0 and len(digits) in (CITIZEN_ID_DIGITS - 2, CITIZEN_ID_DIGITS - 1):
            return digits.zfill(CITIZEN_ID_DIGITS)
        if value > 0 and len(digits) == PHONE_DIGITS - 1 and digits[0] in "35789":
            return digits.zfill(PHONE_DIGITS)
        return digits
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)
