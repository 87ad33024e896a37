"""Community work: commune and province officials, community digital teams, villages, households,
people and their door-to-door onboarding checklists."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the officials' and community teams' pages."""
