"""Adoption indicators per commune: aggregates kept up to date as things happen, the indicators
computed from them, dashboards, rankings and exports."""

from flask import Flask
from flask_babel import lazy_gettext  # type: ignore[import-untyped]


def init_app(app: Flask) -> None:
    """Register the dashboards, their number filters, and their link in the officials' area."""
    # Imported here: the views import kiosk's modules, which import this package's models.
    from kiosk.adoption import charts  # noqa: PLC0415
    from kiosk.adoption.views import blueprint  # noqa: PLC0415
    from kiosk.community import add_area_link  # noqa: PLC0415

    app.register_blueprint(blueprint)
    app.add_template_filter(charts.format_count, "count_vi")
    app.add_template_filter(charts.format_percent, "percent_vi")
    app.add_template_filter(charts.format_decimal, "decimal_vi")
    add_area_link(app, "adoption.index", lazy_gettext("Chỉ số"))
