"""The `merchants` blueprint: registering a market stall, its printable VietQR, and paying it."""

from flask import Blueprint

blueprint = Blueprint("merchants", __name__)
