"""The ``softatm keys …`` command group: create, rotate and retire keys in the keys folder.

Signing keys rotate with an overlap: `rotate-signing` makes the next key the signer while the old
one still verifies the codes it signed; once those have expired, `retire-signing ID` refuses it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from kiosk.codes import signing
from kiosk.keys import init_data_keys, signing_keys_dir

keys_group = AppGroup("keys", help="Manage the data-encryption and code-signing keys.")


def _keys_dir() -> Path:
    directory: Path = current_app.config["KEYS_DIR"]
    return directory


@keys_group.command("init")
def init() -> None:
    """Create whichever keys are missing (safe to run again: existing keys are kept)."""
    created = init_data_keys(_keys_dir())
    for path in created:
        click.echo(f"Created data key {path}")
    directory = signing_keys_dir(_keys_dir())
    if not (directory / signing.MANIFEST_NAME).exists():
        key_id = signing.generate_key(directory)
        click.echo(f"Created code-signing key {key_id} in {directory}")
    click.echo("Keys are in place.")


@keys_group.command("rotate-signing")
def rotate_signing() -> None:
    """Make a new code-signing key the signer; the old one keeps verifying until retired."""
    key_id = signing.rotate(signing_keys_dir(_keys_dir()))
    click.echo(f"Code-signing key {key_id} now signs new codes.")


@keys_group.command("retire-signing")
@click.argument("key_id", type=click.IntRange(signing.KEY_ID_MIN, signing.KEY_ID_MAX))
def retire_signing(key_id: int) -> None:
    """Stop accepting codes signed by KEY_ID (never the current signer)."""
    try:
        signing.retire(signing_keys_dir(_keys_dir()), key_id)
    except signing.KeyRingError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Code-signing key {key_id} is retired: codes it signed are refused.")


@keys_group.command("status")
def status() -> None:
    """Show which signing key signs and which verify (public information only)."""
    ring = signing.load_key_ring(signing_keys_dir(_keys_dir()))
    click.echo(
        json.dumps(
            {
                "signer": ring.signer.key_id,
                "verifying": sorted(ring.verifying_key_ids),
            }
        )
    )
