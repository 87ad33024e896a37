"""The `wallet` blueprint: what a signed-in citizen sees of their money."""

from flask import Blueprint

blueprint = Blueprint("wallet", __name__)
