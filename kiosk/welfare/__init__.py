"""Welfare (G2P) disbursement: programmes, pay cycles, beneficiary lists, batched payments into
wallets and cash vouchers paid at the commune post office."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the welfare pages."""
