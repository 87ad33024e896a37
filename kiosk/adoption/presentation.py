"""How the adoption figures read, on every page and in every export: "185 / 200 (92,5%)", the
count per 1,000 adults, the 95% interval, the evidence label, and the spreadsheet rows of the
figures, the targets, the ranking and the definitions. Numbers are written the Vietnamese way
(`kiosk.adoption.charts.format_count` and friends); the spreadsheets get plain numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask_babel import gettext as _  # type: ignore[import-untyped]
from flask_babel import lazy_gettext

from kiosk.adoption import denominators, indicators
from kiosk.adoption.charts import format_count, format_decimal, format_percent
from kiosk.adoption.indicators import DEFINITIONS, Definition, Figure
from kiosk.formatting import vnd

# How each indicator's main number reads: a share of people (a percentage), a count, days, a
# share of money, or a plain ratio (visits per member per week).
SHARE, COUNT, DAYS, MONEY_SHARE, RATIO = "share", "count", "days", "money_share", "ratio"
PRESENTATION: Mapping[str, str] = {
    "accounts_created": COUNT,
    "median_days_to_first_payment": DAYS,
    "welfare_cashless_of_paid_value": MONEY_SHARE,
    "team_visits_per_member_week": RATIO,
}
# Targets make sense for the shares of people (the share of adults with an account, say).
TARGET_KEYS = tuple(
    key for key in indicators.INDICATOR_KEYS if PRESENTATION.get(key, SHARE) in (SHARE, MONEY_SHARE)
)

EVIDENCE_LABELS: Mapping[str, str] = {
    "system": lazy_gettext("Hệ thống xác nhận"),
    "self_reported": lazy_gettext("Tự khai"),
    "seen_on_phone": lazy_gettext("Thấy trên điện thoại"),
    "mixed": lazy_gettext("Hệ thống xác nhận và tự khai"),
}
DENOMINATOR_LABELS: Mapping[str, str] = {
    denominators.DenominatorKind.ADULTS: lazy_gettext("Số người từ 15 tuổi trở lên"),
    denominators.DenominatorKind.HOUSEHOLDS: lazy_gettext("Số hộ gia đình"),
    denominators.DenominatorKind.BENEFICIARIES: lazy_gettext("Số người hưởng trợ cấp xã hội"),
}


@dataclass(frozen=True)
class FigureView:
    """One figure with its texts, as every page and export shows it."""

    figure: Figure
    definition: Definition
    presentation: str
    numerator: str
    denominator: str
    rate: str
    per_1000: str | None
    interval: str | None
    evidence: str
    breakdown: str | None

    @property
    def key(self) -> str:
        return self.figure.key

    @property
    def headline(self) -> str:
        """The one number to read first: the rate when there is one, else the count or days."""
        if self.presentation in (COUNT, DAYS) or self.figure.rate is None:
            return self.numerator
        return self.rate

    @property
    def chart_value(self) -> float | None:
        """The value a trend line plots: a percentage, a count, days or a ratio."""
        figure = self.figure
        if self.presentation == COUNT:
            return float(figure.numerator)
        if self.presentation == DAYS:
            return figure.value if figure.value is not None else None
        if figure.rate is None:
            return None
        return figure.rate if self.presentation == RATIO else figure.rate * 100

    @property
    def rate_number(self) -> float | None:
        """The rate for a spreadsheet: a percentage, or the plain ratio."""
        rate = self.figure.rate
        if rate is None:
            return None
        return round(rate, 2) if self.presentation == RATIO else round(rate * 100, 2)


def _amount_text(presentation: str, amount: int, figure: Figure) -> str:
    if presentation == MONEY_SHARE:
        return vnd(amount)
    if presentation == DAYS:
        days = figure.value if figure.value is not None else float(amount)
        text: str = _("%(days)s ngày", days=format_decimal(days, 1 if days % 1 else 0))
        return text
    return format_count(amount)


def present(figure: Figure) -> FigureView:
    definition = DEFINITIONS[figure.key]
    presentation = PRESENTATION.get(figure.key, SHARE)
    if presentation == DAYS and figure.value is None and figure.denominator in (None, 0):
        numerator = "—"
    else:
        numerator = _amount_text(presentation, figure.numerator, figure)
    if figure.denominator is None:
        denominator = "—"
    elif presentation == MONEY_SHARE:
        denominator = vnd(figure.denominator)
    else:
        denominator = format_count(figure.denominator)
    if figure.rate is None:
        rate = figure.missing or "—"
    elif presentation == RATIO:
        rate = format_decimal(figure.rate, 1)
    else:
        rate = format_percent(figure.rate)
    interval = None
    if figure.interval is not None:
        low, high = figure.interval
        interval = f"{format_percent(low)} - {format_percent(high)}"
    per_1000 = None
    if definition.per_1000:
        per_1000 = format_decimal(figure.per_1000, 1) if figure.per_1000 is not None else "—"
    breakdown = None
    if figure.breakdown:
        breakdown = "; ".join(
            f"{EVIDENCE_LABELS.get(evidence, evidence)}: {format_count(count)}"
            for evidence, count in figure.breakdown
        )
    return FigureView(
        figure=figure,
        definition=definition,
        presentation=presentation,
        numerator=numerator,
        denominator=denominator,
        rate=rate,
        per_1000=per_1000,
        interval=interval,
        evidence=str(EVIDENCE_LABELS.get(definition.evidence, definition.evidence)),
        breakdown=breakdown,
    )


# --- Rows for the spreadsheets ------------------------------------------------------------------

FIGURE_HEADER = (
    lazy_gettext("Mã chỉ số"),
    lazy_gettext("Chỉ số"),
    lazy_gettext("Tử số"),
    lazy_gettext("Mẫu số"),
    lazy_gettext("Tỷ lệ (%)"),
    lazy_gettext("Khoảng tin cậy 95%: thấp (%)"),
    lazy_gettext("Khoảng tin cậy 95%: cao (%)"),
    lazy_gettext("Trên 1.000 người lớn"),
    lazy_gettext("Mẫu số nhỏ"),
    lazy_gettext("Bằng chứng"),
    lazy_gettext("Ghi chú"),
)


def figure_cells(view: FigureView) -> list[object]:
    figure = view.figure
    low, high = figure.interval if figure.interval is not None else (None, None)
    notes = [text for text in (figure.missing, figure.note, view.breakdown) if text]
    numerator: object = figure.numerator
    if view.presentation == DAYS and figure.value is not None:
        numerator = figure.value
    return [
        figure.key,
        view.definition.label,
        numerator,
        figure.denominator,
        view.rate_number,
        round(low * 100, 2) if low is not None else None,
        round(high * 100, 2) if high is not None else None,
        round(figure.per_1000, 1) if figure.per_1000 is not None else None,
        _("Có") if figure.small_denominator else "",
        view.evidence,
        " · ".join(notes),
    ]


def progress_cells(progress: indicators.TargetProgress) -> list[object]:
    return [
        DEFINITIONS[progress.key].label,
        round(progress.target_rate * 100, 2),
        progress.numerator,
        progress.denominator,
        progress.people_still_needed,
        progress.months_left,
        progress.monthly_pace_needed,
        progress.source,
        progress.entered_on,
    ]


PROGRESS_HEADER = (
    lazy_gettext("Chỉ tiêu"),
    lazy_gettext("Mục tiêu (%)"),
    lazy_gettext("Đã đạt"),
    lazy_gettext("Mẫu số"),
    lazy_gettext("Số người còn cần"),
    lazy_gettext("Số tháng còn lại"),
    lazy_gettext("Số người cần mỗi tháng"),
    lazy_gettext("Nguồn"),
    lazy_gettext("Ngày nhập"),
)
DEFINITION_HEADER = (
    lazy_gettext("Mã chỉ số"),
    lazy_gettext("Chỉ số"),
    lazy_gettext("Tử số"),
    lazy_gettext("Mẫu số"),
    lazy_gettext("Cách tính"),
    lazy_gettext("Bằng chứng"),
    lazy_gettext("Tính trên 1.000 người lớn"),
)


def definition_rows() -> list[list[object]]:
    return [
        [
            definition.key,
            definition.label,
            definition.numerator_label,
            definition.denominator_label,
            definition.text,
            str(EVIDENCE_LABELS.get(definition.evidence, definition.evidence)),
            _("Có") if definition.per_1000 else "",
        ]
        for definition in DEFINITIONS.values()
    ]


RANKING_HEADER = (
    lazy_gettext("Hạng"),
    lazy_gettext("Mã xã"),
    lazy_gettext("Xã/phường"),
    lazy_gettext("Tử số"),
    lazy_gettext("Mẫu số"),
    lazy_gettext("Tỷ lệ (%)"),
    lazy_gettext("Khoảng tin cậy 95%: thấp (%)"),
    lazy_gettext("Khoảng tin cậy 95%: cao (%)"),
    lazy_gettext("Trên 1.000 người lớn"),
    lazy_gettext("Mẫu số nhỏ"),
    lazy_gettext("Ghi chú"),
)


def ranking_cells(row: indicators.RankingRow, view: FigureView) -> list[object]:
    cells = figure_cells(view)
    # The figure's cells without its key, label and evidence (the same for every row).
    return [row.rank, row.commune_code, row.commune_name, *cells[2:9], cells[10]]
