"""The `citizens` blueprint: registration, sign-in and sign-out, and the citizen's own settings."""

from flask import Blueprint

blueprint = Blueprint("citizens", __name__)
