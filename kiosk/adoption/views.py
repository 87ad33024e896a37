"""The `adoption` blueprint (``/quan-ly/chi-so``): commune dashboards, the province ranking, the
denominators and targets form, and their exports (CSV, Excel, a printable A4 report).

Each view parses the query, checks that the signed-in official may see the place
(`kiosk.community.access`), reads the figures from `kiosk.adoption.indicators` (which reads the
roll-up's aggregates, never the ledger) and renders; how a figure reads, on a page or in a
spreadsheet, is `kiosk.adoption.presentation`. Pages are tables first, with small SVG charts beside
them (`kiosk.adoption.charts`), and work without JavaScript on a 360 px screen.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _  # type: ignore[import-untyped]
from markupsafe import Markup
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from kiosk.adoption import charts, denominators, indicators
from kiosk.adoption.charts import format_count, format_percent
from kiosk.adoption.exports import Sheet, csv_download, xlsx_download
from kiosk.adoption.indicators import DEFINITIONS, Definition, Period
from kiosk.adoption.presentation import (
    DEFINITION_HEADER,
    DENOMINATOR_LABELS,
    EVIDENCE_LABELS,
    FIGURE_HEADER,
    PROGRESS_HEADER,
    RANKING_HEADER,
    TARGET_KEYS,
    FigureView,
    definition_rows,
    figure_cells,
    present,
    progress_cells,
    ranking_cells,
)
from kiosk.community.access import (
    can_edit_commune,
    can_see_commune,
    current_official,
    official_required,
)
from kiosk.community.models import Official, OfficialRole
from kiosk.database import get_session
from kiosk.formatting import local_time, local_today
from kiosk.places.models import Commune, Province
from kiosk.places.seed import provinces

blueprint = Blueprint("adoption", __name__, url_prefix="/quan-ly/chi-so")

PERIOD_ARG = "ky"
INDICATOR_ARG = "chi-so"
TREND_ARG = "xu-huong"
PAGE_ARG = "trang"
YEAR_ARG = "nam"
TREND_MONTHS = 12
FUNNEL_MONTHS = 12
RANKING_PAGE_SIZE_ROWS = 50
# A province has at most a few hundred communes; the ranking reads them all once, then pages.
RANKING_COMMUNES_MAX = indicators.RANKING_LIMIT_MAX
RANKING_CHART_BARS = 10
PERIOD_CHOICES_MONTHS = 12
PERIOD_CHOICES_QUARTERS = 4
DENOMINATOR_FORM_PREFIX = "denominator_"
TARGET_FORM_PREFIX = "target_"


class InvalidQuery(Exception):
    """A query string the page cannot read (a period, an indicator, a page): 400."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@blueprint.errorhandler(InvalidQuery)
def refuse_query(error: InvalidQuery) -> tuple[str, int]:
    return render_template("adoption/invalid.html", message=error.message), 400


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- Reading the query ------------------------------------------------------------------------


def _period(today: dt.date) -> Period:
    raw = request.args.get(PERIOD_ARG, "").strip()
    if not raw:
        raw = f"{today.year}-{today.month:02d}"
    try:
        return indicators.parse_period(raw, today)
    except ValueError:
        raise InvalidQuery(
            _(
                "Kỳ báo cáo “%(period)s” không đọc được. Hãy chọn một tháng (ví dụ 2026-11), "
                "một quý (2026-Q4) hoặc từ đầu năm (2026-ytd).",
                period=raw[:20],
            )
        ) from None


def _indicator_key(argument: str, default: str) -> str:
    key = request.args.get(argument, default)
    if key not in DEFINITIONS:
        raise InvalidQuery(
            _("Không có chỉ số “%(key)s”. Hãy chọn một chỉ số trong danh sách.", key=key[:40])
        )
    return key


def _page_number() -> int:
    raw = request.args.get(PAGE_ARG, "1")
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidQuery(_("Số trang phải là một số nguyên từ 1 trở lên."))
    return int(raw)


def _year(today: dt.date) -> int:
    raw = request.args.get(YEAR_ARG, str(today.year))
    if not raw.isdigit() or not denominators.YEAR_MIN <= int(raw) <= denominators.YEAR_MAX:
        raise InvalidQuery(
            _(
                "Năm phải từ %(first)d đến %(last)d.",
                first=denominators.YEAR_MIN,
                last=denominators.YEAR_MAX,
            )
        )
    return int(raw)


def _period_choices(period: Period, today: dt.date) -> list[tuple[str, str]]:
    """The periods offered in the picker: this year to date, the last months and quarters, and
    the period shown (when it is older)."""
    keys = [f"{today.year}-ytd"]
    month = dt.date(today.year, today.month, 1)
    for _index in range(PERIOD_CHOICES_MONTHS):
        keys.append(f"{month.year}-{month.month:02d}")
        month = _previous_month(month)
    year, quarter = today.year, (today.month - 1) // 3 + 1
    for _index in range(PERIOD_CHOICES_QUARTERS):
        keys.append(f"{year}-Q{quarter}")
        year, quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
    keys.append(f"{today.year - 1}-ytd")
    choices = []
    for key in keys:
        try:
            choices.append((key, indicators.parse_period(key, today).label))
        except ValueError:  # a period the core refuses (say, in the future) is not offered
            continue
    current = indicators.period_key(period)
    if current not in {key for key, _label in choices}:
        choices.insert(0, (current, period.label))
    return choices


def _previous_month(month: dt.date) -> dt.date:
    return (
        dt.date(month.year - 1, 12, 1)
        if month.month == 1
        else dt.date(month.year, month.month - 1, 1)
    )


def _months_back(last: dt.date, count: int) -> dt.date:
    month = dt.date(last.year, last.month, 1)
    for _index in range(count - 1):
        month = _previous_month(month)
    return month


def _last_month_of(period: Period, today: dt.date) -> dt.date:
    """The first day of the period's last month, not after this month."""
    last_day = min(period.end - dt.timedelta(days=1), today)
    return dt.date(last_day.year, last_day.month, 1)


# --- Access ------------------------------------------------------------------------------------


def _visible_commune(session: Session, official: Official, commune_code: str) -> Commune:
    if not can_see_commune(official, commune_code, session=session):
        abort(403)
    commune = session.get(Commune, commune_code)
    if commune is None:
        abort(404)
    return commune


def _visible_province(session: Session, official: Official, province_code: str) -> Province:
    """Admins see every province, province officials their own; commune officials and team
    members have no province view (they would see other communes)."""
    allowed = official.role == OfficialRole.ADMIN or (
        official.role == OfficialRole.PROVINCE_OFFICIAL and official.province_code == province_code
    )
    if not allowed:
        abort(403)
    province = session.get(Province, province_code)
    if province is None:
        abort(404)
    return province


# --- The commune dashboard ----------------------------------------------------------------------


@dataclass(frozen=True)
class CommunePage:
    commune: Commune
    province: Province | None
    period: Period
    figures: list[FigureView]
    progress: list[indicators.TargetProgress]
    as_of: dt.datetime | None
    generated_at: dt.datetime


def _commune_page(
    session: Session, commune: Commune, period: Period, now: dt.datetime
) -> CommunePage:
    today = local_today(now)
    figures = indicators.commune_indicators(session, commune.code, period, today)
    return CommunePage(
        commune=commune,
        province=session.get(Province, commune.province_code),
        period=period,
        figures=[present(figure) for figure in figures],
        progress=indicators.target_progress(session, commune.code, period.year, today),
        as_of=indicators.last_rollup_at(session),
        generated_at=now,
    )


@blueprint.get("/")
@official_required()
def index() -> BaseResponse | str:
    """Where the officials' navigation points: one's own commune or province; an admin chooses a
    province."""
    official = current_official()
    today = local_today(utc_now())
    if official.commune_code is not None:
        return redirect(url_for(".commune_dashboard", commune_code=official.commune_code))
    if official.province_code is not None:
        return redirect(url_for(".province_view", province_code=official.province_code))
    return render_template(
        "adoption/index.html",
        provinces=provinces(get_session()),
        period_key=f"{today.year}-{today.month:02d}",
    )


@blueprint.get("/xa/<commune_code>")
@official_required()
def commune_dashboard(commune_code: str) -> str:
    session = get_session()
    official = current_official()
    commune = _visible_commune(session, official, commune_code)
    now = utc_now()
    today = local_today(now)
    period = _period(today)
    trend_key = _indicator_key(TREND_ARG, "accounts_created")
    data = _commune_page(session, commune, period, now)
    last_month = _last_month_of(period, today)
    funnel_rows = indicators.funnel(
        session, commune.code, _months_back(last_month, FUNNEL_MONTHS), FUNNEL_MONTHS
    )
    trend = [
        (month, present(figure))
        for month, figure in indicators.trend(
            session, commune.code, trend_key, last_month, TREND_MONTHS
        )
    ]
    return render_template(
        "adoption/commune.html",
        data=data,
        period_key=indicators.period_key(period),
        period_choices=_period_choices(period, today),
        can_edit=can_edit_commune(official, commune.code),
        can_see_province=_may_see_province(official, commune.province_code),
        progress_charts=[_progress_chart(item) for item in data.progress],
        funnel_rows=funnel_rows,
        funnel_chart=_funnel_chart(funnel_rows),
        trend_key=trend_key,
        trend=trend,
        trend_chart=_trend_chart(trend_key, trend),
        definitions=DEFINITIONS,
        small_denominator_max=indicators.SMALL_DENOMINATOR_MAX,
    )


def _may_see_province(official: Official, province_code: str) -> bool:
    return official.role == OfficialRole.ADMIN or (
        official.role == OfficialRole.PROVINCE_OFFICIAL and official.province_code == province_code
    )


def _progress_chart(progress: indicators.TargetProgress) -> Markup:
    rate = progress.numerator / progress.denominator if progress.denominator else 0.0
    label = DEFINITIONS[progress.key].label
    return charts.progress_bar(
        chart_id=f"muc-tieu-{progress.key}",
        title=_("Tiến độ: %(label)s", label=label),
        description=_(
            "Đạt %(rate)s, mục tiêu %(target)s; còn cần %(people)s người.",
            rate=format_percent(rate),
            target=format_percent(progress.target_rate, 0),
            people=format_count(progress.people_still_needed),
        ),
        rate=rate,
        target_rate=progress.target_rate,
    )


def _funnel_chart(rows: Sequence[indicators.FunnelRow]) -> Markup:
    created = sum(row.created for row in rows)
    stages = (
        (_("Mở tài khoản"), created),
        (_("Đã xác minh"), sum(row.verified for row in rows)),
        (_("Có tiền vào lần đầu"), sum(row.first_money_in for row in rows)),
        (_("Thanh toán lần đầu"), sum(row.first_payment for row in rows)),
    )
    bars = [
        charts.Bar(
            label,
            count,
            format_count(count)
            if index == 0 or not created
            else f"{format_count(count)} ({format_percent(count / created)})",
        )
        for index, (label, count) in enumerate(stages)
    ]
    return charts.bar_chart(
        chart_id="pheu",
        title=_("Phễu %(months)d tháng gần nhất", months=len(rows)),
        description=", ".join(f"{bar.label}: {bar.text}" for bar in bars),
        bars=bars,
    )


def _trend_chart(key: str, trend: Sequence[tuple[dt.date, FigureView]]) -> Markup:
    points = [
        charts.Point(month.strftime("%m/%Y"), view.chart_value, view.headline)
        for month, view in trend
    ]
    label = DEFINITIONS[key].label
    return charts.line_chart(
        chart_id="xu-huong",
        title=_("Xu hướng: %(label)s", label=label),
        description="; ".join(f"{point.label}: {point.text}" for point in points),
        points=points,
    )


# --- Commune exports ------------------------------------------------------------------------------


def _commune_preamble(data: CommunePage) -> list[tuple[str, str]]:
    return [
        (_("Xã/phường"), f"{data.commune.name} ({data.commune.code})"),
        (_("Tỉnh/thành phố"), data.province.name if data.province else ""),
        (_("Kỳ báo cáo"), data.period.label),
        (_("Lập lúc"), local_time(data.generated_at)),
        (_("Số liệu tính đến"), local_time(data.as_of) if data.as_of else _("chưa tổng hợp")),
    ]


def _export_stem(prefix: str, code: str, period: Period) -> str:
    return f"{prefix}-{code}-{indicators.period_key(period)}"


def _commune_export(commune_code: str) -> CommunePage:
    session = get_session()
    commune = _visible_commune(session, current_official(), commune_code)
    now = utc_now()
    return _commune_page(session, commune, _period(local_today(now)), now)


@blueprint.get("/xa/<commune_code>/chi-so.csv")
@official_required()
def commune_csv(commune_code: str) -> Response:
    data = _commune_export(commune_code)
    rows: list[Sequence[object]] = [list(line) for line in _commune_preamble(data)]
    rows.append([])
    rows.append([str(name) for name in FIGURE_HEADER])
    rows.extend(figure_cells(view) for view in data.figures)
    if data.progress:
        rows.append([])
        rows.append([str(name) for name in PROGRESS_HEADER])
        rows.extend(progress_cells(item) for item in data.progress)
    return csv_download(rows, filename=_export_stem("chi-so", commune_code, data.period) + ".csv")


@blueprint.get("/xa/<commune_code>/chi-so.xlsx")
@official_required()
def commune_xlsx(commune_code: str) -> Response:
    data = _commune_export(commune_code)
    preamble = [f"{label}: {value}" for label, value in _commune_preamble(data)]
    sheets = [
        Sheet(
            _("Số liệu"),
            [str(name) for name in FIGURE_HEADER],
            [figure_cells(view) for view in data.figures],
            preamble=preamble,
        ),
        Sheet(
            _("Mục tiêu"),
            [str(name) for name in PROGRESS_HEADER],
            [progress_cells(item) for item in data.progress],
            preamble=preamble,
        ),
        Sheet(_("Định nghĩa"), [str(name) for name in DEFINITION_HEADER], definition_rows()),
    ]
    return xlsx_download(
        sheets, filename=_export_stem("chi-so", commune_code, data.period) + ".xlsx"
    )


@blueprint.get("/xa/<commune_code>/bao-cao")
@official_required()
def commune_report(commune_code: str) -> str:
    """The A4 report for a meeting: the figures, the targets, and room to sign."""
    data = _commune_export(commune_code)
    return render_template(
        "adoption/report.html",
        data=data,
        period_key=indicators.period_key(data.period),
        progress_charts=[_progress_chart(item) for item in data.progress],
        definitions=DEFINITIONS,
    )


# --- The province ranking -------------------------------------------------------------------------


@dataclass(frozen=True)
class RankingPage:
    province: Province
    period: Period
    key: str
    definition: Definition
    rows: list[tuple[indicators.RankingRow, FigureView]]
    total_rows: int
    page_number: int
    page_count: int
    as_of: dt.datetime | None
    generated_at: dt.datetime


def _ranking(province_code: str, *, paged: bool) -> RankingPage:
    session = get_session()
    province = _visible_province(session, current_official(), province_code)
    now = utc_now()
    today = local_today(now)
    period = _period(today)
    key = _indicator_key(INDICATOR_ARG, "accounts_created")
    ranked = indicators.province_ranking(
        session, province.code, period, key, today, limit=RANKING_COMMUNES_MAX
    )
    page_count = max(1, -(-len(ranked) // RANKING_PAGE_SIZE_ROWS))
    page_number = _page_number() if paged else 1
    if page_number > page_count:
        raise InvalidQuery(
            _(
                "Không có trang %(number)d: chỉ có %(count)d trang.",
                number=page_number,
                count=page_count,
            )
        )
    shown = ranked
    if paged:
        first = (page_number - 1) * RANKING_PAGE_SIZE_ROWS
        shown = ranked[first : first + RANKING_PAGE_SIZE_ROWS]
    return RankingPage(
        province=province,
        period=period,
        key=key,
        definition=DEFINITIONS[key],
        rows=[(row, present(row.figure)) for row in shown],
        total_rows=len(ranked),
        page_number=page_number,
        page_count=page_count,
        as_of=indicators.last_rollup_at(session),
        generated_at=now,
    )


@blueprint.get("/tinh/<province_code>")
@official_required()
def province_view(province_code: str) -> str:
    data = _ranking(province_code, paged=True)
    today = local_today(data.generated_at)
    return render_template(
        "adoption/province.html",
        data=data,
        period_key=indicators.period_key(data.period),
        period_choices=_period_choices(data.period, today),
        ranking_chart=_ranking_chart(data) if data.page_number == 1 else None,
        evidence_label=EVIDENCE_LABELS.get(data.definition.evidence, data.definition.evidence),
        definitions=DEFINITIONS,
        small_denominator_max=indicators.SMALL_DENOMINATOR_MAX,
    )


def _ranking_chart(data: RankingPage) -> Markup | None:
    top = [
        (row, view) for row, view in data.rows[:RANKING_CHART_BARS] if view.chart_value is not None
    ]
    if not top:
        return None
    bars = [
        charts.Bar(row.commune_name, view.chart_value or 0.0, view.headline) for row, view in top
    ]
    return charts.bar_chart(
        chart_id="xep-hang",
        title=_("%(count)d xã đứng đầu: %(label)s", count=len(bars), label=data.definition.label),
        description="; ".join(f"{bar.label}: {bar.text}" for bar in bars),
        bars=bars,
    )


def _ranking_preamble(data: RankingPage) -> list[tuple[str, str]]:
    return [
        (_("Tỉnh/thành phố"), f"{data.province.name} ({data.province.code})"),
        (_("Chỉ số"), data.definition.label),
        (
            _("Bằng chứng"),
            str(EVIDENCE_LABELS.get(data.definition.evidence, data.definition.evidence)),
        ),
        (_("Kỳ báo cáo"), data.period.label),
        (_("Lập lúc"), local_time(data.generated_at)),
        (_("Số liệu tính đến"), local_time(data.as_of) if data.as_of else _("chưa tổng hợp")),
    ]


@blueprint.get("/tinh/<province_code>/xep-hang.csv")
@official_required()
def province_csv(province_code: str) -> Response:
    data = _ranking(province_code, paged=False)
    rows: list[Sequence[object]] = [list(line) for line in _ranking_preamble(data)]
    rows.append([])
    rows.append([str(name) for name in RANKING_HEADER])
    rows.extend(ranking_cells(row, view) for row, view in data.rows)
    stem = _export_stem(f"xep-hang-{data.key}", province_code, data.period)
    return csv_download(rows, filename=stem + ".csv")


@blueprint.get("/tinh/<province_code>/xep-hang.xlsx")
@official_required()
def province_xlsx(province_code: str) -> Response:
    data = _ranking(province_code, paged=False)
    sheets = [
        Sheet(
            _("Xếp hạng"),
            [str(name) for name in RANKING_HEADER],
            [ranking_cells(row, view) for row, view in data.rows],
            preamble=[f"{label}: {value}" for label, value in _ranking_preamble(data)],
        ),
        Sheet(_("Định nghĩa"), [str(name) for name in DEFINITION_HEADER], definition_rows()),
    ]
    stem = _export_stem(f"xep-hang-{data.key}", province_code, data.period)
    return xlsx_download(sheets, filename=stem + ".xlsx")


# --- Definitions ----------------------------------------------------------------------------------


@blueprint.get("/dinh-nghia")
@official_required()
def definitions_page() -> str:
    """Every indicator's definition, each with its own anchor (#accounts_created…)."""
    return render_template(
        "adoption/definitions.html",
        definitions=DEFINITIONS,
        evidence_labels=EVIDENCE_LABELS,
        small_denominator_max=indicators.SMALL_DENOMINATOR_MAX,
    )


# --- Denominators and targets -------------------------------------------------------------------


@blueprint.route("/xa/<commune_code>/mau-so", methods=["GET", "POST"])
@official_required()
def targets(commune_code: str) -> BaseResponse | tuple[str, int]:
    session = get_session()
    official = current_official()
    commune = _visible_commune(session, official, commune_code)
    now = utc_now()
    year = _year(local_today(now))
    can_edit = can_edit_commune(official, commune.code)
    if request.method == "GET":
        return _targets_page(session, commune, year, can_edit, errors={}, form={}), 200
    if not can_edit:
        abort(403)
    action = request.form.get("action", "")
    try:
        if action == "denominator":
            _save_denominator(session, commune, year, official, now)
            flash(_("Đã lưu mẫu số năm %(year)d.", year=year))
        elif action == "target":
            _save_target(session, commune, year, official, now)
            flash(_("Đã lưu mục tiêu năm %(year)d.", year=year))
        else:
            abort(400)
    except FormError as error:
        return _targets_page(
            session, commune, year, can_edit, errors={error.field: error.message}, form=request.form
        ), 400
    return redirect(url_for(".targets", commune_code=commune.code, nam=year))


class FormError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _save_denominator(
    session: Session, commune: Commune, year: int, official: Official, now: dt.datetime
) -> None:
    form, prefix = request.form, DENOMINATOR_FORM_PREFIX
    kind = form.get(prefix + "kind", "")
    if kind not in {kind.value for kind in denominators.DenominatorKind}:
        raise FormError(prefix + "kind", _("Hãy chọn loại mẫu số."))
    value = _whole_number(form.get(prefix + "value", ""))
    if value is None:
        raise FormError(
            prefix + "value", _("Hãy nhập số người hoặc số hộ bằng chữ số, ví dụ 12500.")
        )
    as_of = _date(form.get(prefix + "as_of", ""))
    if as_of is None:
        raise FormError(
            prefix + "as_of", _("Hãy nhập ngày của số liệu, ví dụ 01/01/%(year)d.", year=year)
        )
    try:
        denominators.set_denominator(
            session,
            commune_code=commune.code,
            year=year,
            kind=kind,
            value=value,
            source=form.get(prefix + "source", "").strip(),
            as_of=as_of,
            by=official.principal,
            now=now,
        )
    except denominators.InvalidEntry as error:
        raise FormError(prefix + error.field, error.message) from None


def _save_target(
    session: Session, commune: Commune, year: int, official: Official, now: dt.datetime
) -> None:
    form, prefix = request.form, TARGET_FORM_PREFIX
    key = form.get(prefix + "key", "")
    if key not in TARGET_KEYS:
        raise FormError(prefix + "key", _("Hãy chọn chỉ tiêu."))
    percent = _percent(form.get(prefix + "rate", ""))
    if percent is None:
        raise FormError(prefix + "rate", _("Hãy nhập mục tiêu là một tỷ lệ phần trăm, ví dụ 80."))
    try:
        denominators.set_target(
            session,
            commune_code=commune.code,
            year=year,
            key=key,
            rate=percent / 100,
            source=form.get(prefix + "source", "").strip(),
            by=official.principal,
            now=now,
        )
    except denominators.InvalidEntry as error:
        raise FormError(prefix + error.field, error.message) from None


def _whole_number(raw: str) -> int | None:
    """ "12500", "12.500" or "12 500" (how people write thousands here) → 12500."""
    digits = raw.strip().replace(".", "").replace(" ", "").replace("\u00a0", "")
    if not digits.isdigit() or len(digits) > 12:
        return None
    return int(digits)


def _percent(raw: str) -> float | None:
    """ "80", "80%" or "92,5" → 80.0 / 92.5; None when not a number."""
    text = raw.strip().removesuffix("%").strip().replace(",", ".")
    if not text or len(text) > 8:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _date(raw: str) -> dt.date | None:
    """ "2026-01-01" (a date field) or "01/01/2026" (typed) → the date."""
    text = raw.strip()
    typed = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text)
    try:
        if typed:
            day, month, year = (int(part) for part in typed.groups())
            return dt.date(year, month, day)
        return dt.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def _targets_page(
    session: Session,
    commune: Commune,
    year: int,
    can_edit: bool,
    *,
    errors: Mapping[str, str],
    form: Mapping[str, str],
) -> str:
    return render_template(
        "adoption/targets.html",
        commune=commune,
        year=year,
        can_edit=can_edit,
        denominators=denominators.denominators_of(session, commune.code, year),
        targets=denominators.targets_of(session, commune.code, year),
        denominator_labels=DENOMINATOR_LABELS,
        denominator_options=[
            (kind.value, DENOMINATOR_LABELS[kind]) for kind in denominators.DenominatorKind
        ],
        target_options=[(key, DEFINITIONS[key].label) for key in TARGET_KEYS],
        definitions=DEFINITIONS,
        errors=errors,
        form=form,
    )
