"""Generic writers for downloads: CSV that Excel opens with Vietnamese intact, and .xlsx
workbooks of one or more sheets. They take rows of plain cells (text, numbers, dates), so any
area can reuse them (the welfare batches' reports do).

Formula injection (OWASP "CSV Injection"): a text cell that begins with = + - @, a tab or a
carriage return could be run as a formula by a spreadsheet, so it is written with a leading
apostrophe. Only text is escaped: a number stays a number, so -5 is still -5.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from flask import Response
from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.styles import Alignment, Font  # type: ignore[import-untyped]
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

from kiosk.formatting import LOCAL_ZONE

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
UTF8_BOM = "\ufeff"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Excel's own limits: a sheet name has at most 31 characters, a cell at most 32,767.
SHEET_NAME_LENGTH_MAX_CHARS = 31
CELL_LENGTH_MAX_CHARS = 32_767
COLUMN_WIDTH_MAX_CHARS = 60
# Characters an .xlsx file cannot hold (XML 1.0 forbids them); openpyxl refuses them.
_ILLEGAL_XML_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

Cell = object


def escape_cell(value: object) -> object:
    """The cell as a spreadsheet should store it: text that could start a formula gets a leading
    apostrophe; numbers, dates and empty cells are returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(LOCAL_ZONE)
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return value
    return escape_cell(str(value))


def write_csv(rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 with a byte order mark (so that Excel reads Vietnamese correctly), comma-separated,
    CRLF line ends (RFC 4180), every text cell escaped against formulas."""
    buffer = io.StringIO()
    buffer.write(UTF8_BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([_csv_cell(value) for value in row])
    return buffer.getvalue().encode("utf-8")


@dataclass(frozen=True)
class Sheet:
    """One worksheet: a title (at most 31 characters), a header row and the data rows."""

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[object]]
    # Lines written above the header (what the figures are, for whom, when).
    preamble: Sequence[str] = field(default_factory=tuple)


def _xlsx_cell(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        # Excel has no time zones: local time, as the people reading it live it.
        if value.tzinfo is not None:
            value = value.astimezone(LOCAL_ZONE).replace(tzinfo=None)
        return value
    if isinstance(value, dt.date | bool | int | float):
        return value
    text = _ILLEGAL_XML_CHARACTERS.sub("", str(value))[:CELL_LENGTH_MAX_CHARS]
    return escape_cell(text)


def write_xlsx(sheets: Sequence[Sheet]) -> bytes:
    """An .xlsx workbook with one worksheet per sheet, headers in bold and frozen, columns
    sized to their content. Text cells are escaped as in CSV."""
    workbook = Workbook()
    default = workbook.active
    if default is not None:
        workbook.remove(default)
    for sheet in sheets:
        worksheet = workbook.create_sheet(title=_sheet_title(sheet.title))
        widths: dict[int, int] = {}
        for line in sheet.preamble:
            worksheet.append([_xlsx_cell(line)])
        if sheet.preamble:
            worksheet.append([])
        worksheet.append([_xlsx_cell(name) for name in sheet.header])
        header_row = worksheet.max_row
        for cell in worksheet[header_row]:
            cell.font = Font(bold=True)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for row in sheet.rows:
            worksheet.append([_xlsx_cell(value) for value in row])
        for row in (sheet.header, *sheet.rows):
            for index, value in enumerate(row, start=1):
                length = len(str(value)) if value is not None else 0
                widths[index] = max(widths.get(index, 8), min(length + 2, COLUMN_WIDTH_MAX_CHARS))
        for index, width in widths.items():
            worksheet.column_dimensions[get_column_letter(index)].width = width
        worksheet.freeze_panes = worksheet.cell(row=header_row + 1, column=1)
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


def _sheet_title(title: str) -> str:
    # Excel forbids these characters in a sheet name.
    cleaned = re.sub(r"[\[\]:*?/\\]", "-", title).strip("'")
    return cleaned[:SHEET_NAME_LENGTH_MAX_CHARS] or "Sheet"


def safe_filename(stem: str) -> str:
    """ASCII letters, digits, dot, dash and underscore only: safe in a Content-Disposition
    header on every browser."""
    return _FILENAME_UNSAFE.sub("-", stem).strip("-.") or "bao-cao"


def download(data: bytes, *, filename: str, content_type: str) -> Response:
    """A response that the browser saves as ``filename`` rather than shows."""
    response = Response(data, content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{safe_filename(filename)}"'
    return response


def csv_download(rows: Iterable[Sequence[object]], *, filename: str) -> Response:
    return download(write_csv(rows), filename=filename, content_type=CSV_CONTENT_TYPE)


def xlsx_download(sheets: Sequence[Sheet], *, filename: str) -> Response:
    return download(write_xlsx(sheets), filename=filename, content_type=XLSX_CONTENT_TYPE)
