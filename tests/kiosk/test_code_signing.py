"""The key ring of the codes: files and their modes, rotation, retirement, refusals on load."""

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest

from kiosk.codes import signing
from kiosk.codes.signing import (
    KeyRingError,
    generate_key,
    load_key_ring,
    retire,
    rotate,
)
from kiosk.codes.tokens import (
    CodeKind,
    RetiredSigningKey,
    UnknownSigningKey,
    issue,
    verify,
)

NOW = dt.datetime(2025, 9, 1, 8, 0, tzinfo=dt.UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _manifest(keys_dir: Path) -> dict[str, object]:
    document: dict[str, object] = json.loads((keys_dir / "manifest.json").read_text())
    return document


def _issue_withdrawal(keys_dir: Path) -> str:
    return issue(
        load_key_ring(keys_dir),
        kind=CodeKind.WITHDRAWAL,
        account_id=42,
        amount_vnd=500_000,
        now=NOW,
        ttl_s=900,
    ).token


def test_first_key_signs_and_every_file_is_private(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"

    assert generate_key(keys_dir, now=NOW) == 1

    ring = load_key_ring(keys_dir)
    assert ring.signer.key_id == 1
    assert ring.verifying_key_ids == {1}
    seed = keys_dir / "key-00001.seed"
    assert len(seed.read_bytes()) == signing.SEED_LENGTH_BYTES
    assert _mode(seed) == 0o600
    assert _mode(keys_dir / "manifest.json") == 0o600
    assert _mode(keys_dir) == 0o700
    manifest = _manifest(keys_dir)
    assert manifest["signer"] == 1
    assert manifest["keys"] == [
        {
            "id": 1,
            "public_key": manifest["keys"][0]["public_key"],  # type: ignore[index]
            "created_at": "2025-09-01T08:00:00Z",
            "retired_at": None,
        }
    ]


def test_operations_leave_no_temporary_files(tmp_path: Path) -> None:
    generate_key(tmp_path)
    generate_key(tmp_path)
    rotate(tmp_path)
    rotate(tmp_path)
    retire(tmp_path, 1)

    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == [".lock", "key-00003.seed", "manifest.json"]
    assert all(_mode(path) == 0o600 for path in tmp_path.iterdir())


def test_a_staged_key_verifies_at_once_and_signs_after_rotate(tmp_path: Path) -> None:
    generate_key(tmp_path)
    assert generate_key(tmp_path) == 2

    staged = load_key_ring(tmp_path)
    assert staged.signer.key_id == 1
    assert staged.verifying_key_ids == {1, 2}

    assert rotate(tmp_path) == 2
    rotated = load_key_ring(tmp_path)
    assert rotated.signer.key_id == 2
    assert rotated.verifying_key_ids == {1, 2}
    # Key 1 can never sign again, so its seed is gone; its public key stays in the manifest.
    assert not (tmp_path / "key-00001.seed").exists()


def test_rotate_without_a_staged_key_makes_a_new_signer(tmp_path: Path) -> None:
    generate_key(tmp_path)
    assert rotate(tmp_path) == 2
    assert rotate(tmp_path) == 3
    ring = load_key_ring(tmp_path)
    assert ring.signer.key_id == 3
    assert ring.verifying_key_ids == {1, 2, 3}


def test_codes_of_the_old_key_verify_after_rotate_until_it_is_retired(tmp_path: Path) -> None:
    generate_key(tmp_path)
    old_token = _issue_withdrawal(tmp_path)

    rotate(tmp_path)
    ring = load_key_ring(tmp_path)
    assert verify(old_token, ring, NOW).key_id == 1
    new_token = _issue_withdrawal(tmp_path)
    assert verify(new_token, ring, NOW).key_id == 2

    retire(tmp_path, 1, now=NOW)
    ring = load_key_ring(tmp_path)
    with pytest.raises(RetiredSigningKey) as refused:
        verify(old_token, ring, NOW)
    assert isinstance(refused.value, UnknownSigningKey)
    assert refused.value.code == "retired_signing_key"
    assert verify(new_token, ring, NOW).key_id == 2
    assert ring.is_retired(1)
    assert ring.verifier(1) is None
    assert _manifest(tmp_path)["keys"][0]["retired_at"] == "2025-09-01T08:00:00Z"  # type: ignore[index]


def test_the_signer_cannot_be_retired(tmp_path: Path) -> None:
    generate_key(tmp_path)
    with pytest.raises(KeyRingError, match="signs now"):
        retire(tmp_path, 1)
    assert load_key_ring(tmp_path).signer.key_id == 1


def test_retiring_an_unknown_key_is_refused_and_twice_is_harmless(tmp_path: Path) -> None:
    generate_key(tmp_path)
    rotate(tmp_path)
    with pytest.raises(KeyRingError, match="not in the ring"):
        retire(tmp_path, 7)

    retire(tmp_path, 1, now=NOW)
    retire(tmp_path, 1, now=NOW + dt.timedelta(days=1))

    assert _manifest(tmp_path)["keys"][0]["retired_at"] == "2025-09-01T08:00:00Z"  # type: ignore[index]


def test_a_retired_staged_key_is_never_promoted_and_ids_are_never_reused(tmp_path: Path) -> None:
    generate_key(tmp_path)
    generate_key(tmp_path)
    retire(tmp_path, 2)
    assert not (tmp_path / "key-00002.seed").exists()

    assert rotate(tmp_path) == 3
    assert load_key_ring(tmp_path).verifying_key_ids == {1, 3}


def test_an_orphan_seed_from_a_crash_keeps_its_id(tmp_path: Path) -> None:
    generate_key(tmp_path)
    # A crash between writing a seed and the manifest leaves a seed the manifest does not name.
    (tmp_path / "key-00002.seed").write_bytes(os.urandom(32))
    assert generate_key(tmp_path) == 3


def test_private_keys_never_show_in_a_repr(tmp_path: Path) -> None:
    generate_key(tmp_path)
    ring = load_key_ring(tmp_path)
    seed = (tmp_path / "key-00001.seed").read_bytes()
    for shown in (repr(ring), repr(ring.signer), str(ring)):
        assert seed.hex() not in shown
        assert seed.hex().upper() not in shown
    assert repr(ring.signer) == "Signer(key_id=1)"


def test_a_seed_readable_by_others_is_refused(tmp_path: Path) -> None:
    generate_key(tmp_path)
    (tmp_path / "key-00001.seed").chmod(0o640)
    with pytest.raises(KeyRingError, match="chmod 600"):
        load_key_ring(tmp_path)


def test_a_seed_from_another_ring_is_refused(tmp_path: Path) -> None:
    generate_key(tmp_path / "ours")
    generate_key(tmp_path / "theirs")
    os.replace(tmp_path / "theirs" / "key-00001.seed", tmp_path / "ours" / "key-00001.seed")
    with pytest.raises(KeyRingError, match="does not match"):
        load_key_ring(tmp_path / "ours")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[]",
        b'{"format": 2, "signer": 1, "keys": []}',
        b'{"format": 1, "signer": 1, "keys": []}',
        b'{"format": 1, "signer": true, "keys": []}',
        b'{"format": 1, "signer": 1, "keys": [{"id": 1}]}',
        b'{"format": 1, "signer": 1, "keys": [{"id": 0, "public_key": "00", "created_at": ""}]}',
    ],
)
def test_a_broken_manifest_is_refused(tmp_path: Path, content: bytes) -> None:
    generate_key(tmp_path)
    (tmp_path / "manifest.json").write_bytes(content)
    with pytest.raises(KeyRingError):
        load_key_ring(tmp_path)


def test_a_manifest_naming_a_retired_signer_is_refused(tmp_path: Path) -> None:
    generate_key(tmp_path)
    manifest = _manifest(tmp_path)
    manifest["keys"][0]["retired_at"] = "2025-09-01T08:00:00Z"  # type: ignore[index]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(KeyRingError, match="retired"):
        load_key_ring(tmp_path)


def test_a_missing_ring_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyRingError, match=r"manifest\.json is missing"):
        load_key_ring(tmp_path)
    with pytest.raises(KeyRingError, match="does not exist"):
        rotate(tmp_path / "absent")
    generate_key(tmp_path)
    (tmp_path / "key-00001.seed").unlink()
    with pytest.raises(KeyRingError, match="missing"):
        load_key_ring(tmp_path)
