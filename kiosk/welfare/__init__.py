"""Welfare (G2P) disbursement: programmes, pay cycles, beneficiary lists, batched payments into
wallets and cash vouchers paid at the commune post office."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the welfare pages and the voucher expiry command."""
    # Imported here: the views import kiosk's modules, which import this package.
    from kiosk.welfare import cli, views  # noqa: PLC0415

    views.init_app(app)
    app.cli.add_command(cli.welfare_group)
