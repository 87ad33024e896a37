"""The `codes` blueprint: making, showing and cancelling withdrawal and payment codes."""

from flask import Blueprint

blueprint = Blueprint("codes", __name__)
