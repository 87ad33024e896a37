"""The SVG charts: accessible, escaped, numbers written on them, no script."""

import xml.etree.ElementTree as ET

from kiosk.adoption.charts import (
    Bar,
    Point,
    bar_chart,
    format_count,
    format_decimal,
    format_percent,
    line_chart,
    progress_bar,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 — our own SVG, not untrusted input


def texts(root: ET.Element) -> list[str]:
    return [element.text or "" for element in root.iter(f"{SVG}text")]


def test_numbers_are_written_the_vietnamese_way() -> None:
    assert format_count(1234567) == "1.234.567"
    assert format_count(-5) == "-5"
    assert format_decimal(1234.56) == "1.234,6"
    assert format_decimal(-0.04) == "0,0"
    assert format_percent(0.925) == "92,5%"
    assert format_percent(0.8, 0) == "80%"
    assert format_percent(None) == "—"
    # Above zero but below what the digits show: not "0,0%", which reads as no progress at all.
    assert format_percent(3 / 10_000) == "<0,1%"
    assert format_percent(4 / 1_000, 0) == "<1%"
    assert format_percent(0.0005) == "0,1%"  # rounds up: shown as it is
    assert format_percent(0.0) == "0,0%"


def test_bar_chart_has_title_description_and_every_number() -> None:
    svg = bar_chart(
        chart_id="phieu",
        title="Phễu tháng 11",
        description="Tạo, xác minh, nạp tiền, thanh toán",
        bars=[Bar("Tạo tài khoản", 200, "200"), Bar("Đã xác minh", 150, "150 (75,0%)")],
    )
    root = parse(svg)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "phieu-title phieu-desc"
    assert root.find(f"{SVG}title").text == "Phễu tháng 11"  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").text == "Tạo, xác minh, nạp tiền, thanh toán"  # type: ignore[union-attr]
    assert {"Tạo tài khoản", "200", "Đã xác minh", "150 (75,0%)"} <= set(texts(root))
    widths = [
        float(rect.get("width", 0))
        for rect in root.iter(f"{SVG}rect")
        if rect.get("class") == "chart-bar"
    ]
    assert widths[0] > widths[1] > 0
    assert "<script" not in svg


def test_chart_text_is_escaped() -> None:
    svg = bar_chart(
        chart_id='x" onload="alert(1)',
        title="<script>alert(1)</script>",
        description="a & b",
        bars=[Bar("<b>xã</b>", 1, "1")],
    )
    assert "<script>" not in svg
    assert 'onload="alert' not in svg
    root = parse(svg)  # still well-formed XML
    assert "<b>xã</b>" in texts(root)


def test_zero_values_draw_no_bar_but_keep_their_number() -> None:
    root = parse(bar_chart(chart_id="z", title="t", description="d", bars=[Bar("a", 0, "0")]))
    assert not [rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "chart-bar"]
    assert "0" in texts(root)


def test_line_chart_marks_each_month_and_leaves_gaps_for_missing_months() -> None:
    points = [
        Point("12/2025", 10, "10"),
        Point("01/2026", None, "—"),
        Point("02/2026", 30, "30"),
        Point("03/2026", 20, "20"),
    ]
    svg = line_chart(chart_id="xu-huong", title="Xu hướng", description="12 tháng", points=points)
    root = parse(svg)
    circles = list(root.iter(f"{SVG}circle"))
    assert len(circles) == 3
    # The gap splits the line: only the last two known points are joined.
    polylines = list(root.iter(f"{SVG}polyline"))
    assert len(polylines) == 1
    assert len(polylines[0].get("points", "").split()) == 2
    written = texts(root)
    assert "30" in written and "20" in written  # the largest and the latest
    assert "12/2025" in written and "03/2026" in written


def test_line_chart_of_nothing_is_still_an_accessible_image() -> None:
    root = parse(line_chart(chart_id="r", title="Trống", description="Chưa có số liệu", points=[]))
    assert root.get("role") == "img"
    assert not list(root.iter(f"{SVG}circle"))


def test_progress_bar_fills_to_the_rate_and_marks_the_target() -> None:
    root = parse(
        progress_bar(
            chart_id="muc-tieu",
            title="Tiến độ",
            description="62% / 80%",
            rate=0.62,
            target_rate=0.8,
        )
    )
    bar = next(rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "chart-bar")
    track = next(rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "chart-track")
    assert abs(float(bar.get("width", 0)) / float(track.get("width", 1)) - 0.62) < 0.01
    assert "62,0%" in texts(root) and "80%" in texts(root)


def test_progress_bar_never_overflows_past_one_hundred_percent() -> None:
    root = parse(progress_bar(chart_id="p", title="t", description="d", rate=1.7, target_rate=0.8))
    bar = next(rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "chart-bar")
    track = next(rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "chart-track")
    assert float(bar.get("width", 0)) <= float(track.get("width", 0))
