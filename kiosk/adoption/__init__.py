"""Adoption indicators per commune: aggregates kept up to date as things happen, the indicators
computed from them, dashboards, rankings and exports."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the dashboards."""
