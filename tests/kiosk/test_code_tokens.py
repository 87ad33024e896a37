"""Signed code tokens: round trips, every tampering refused, expiry, staleness, kinds, keys."""

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import base45  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.codes import tokens
from kiosk.codes.qr import alphanumeric_capacity_chars, qr_version_for
from kiosk.codes.signing import KeyRing, generate_key, load_key_ring, rotate
from kiosk.codes.tokens import (
    BadSignature,
    CodeClaims,
    CodeError,
    CodeExpired,
    CodeKind,
    CodeNotYetValid,
    CodeStale,
    MalformedCode,
    UnknownSigningKey,
    WrongCodeKind,
    issue,
    reissue,
    verify,
)

NOW = dt.datetime(2025, 9, 1, 8, 0, 0, tzinfo=dt.UTC)
BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


@pytest.fixture(scope="module")
def key_ring(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    keys_dir = tmp_path_factory.mktemp("code-keys")
    generate_key(keys_dir)
    return load_key_ring(keys_dir)


def _withdrawal(key_ring: KeyRing, now: dt.datetime = NOW, ttl_s: int = 900) -> tokens.IssuedCode:
    return issue(
        key_ring,
        kind=CodeKind.WITHDRAWAL,
        account_id=1_234_567,
        amount_vnd=2_000_000,
        now=now,
        ttl_s=ttl_s,
    )


def _payment(key_ring: KeyRing, reference: str = "PE04000123456") -> tokens.IssuedCode:
    return issue(
        key_ring,
        kind=CodeKind.PAYMENT,
        account_id=1_234_567,
        amount_vnd=356_000,
        now=NOW,
        ttl_s=3600,
        biller_id=17,
        bill_reference=reference,
    )


# --- Round trips and size -------------------------------------------------------------------------


def test_a_withdrawal_code_round_trips(key_ring: KeyRing) -> None:
    code_id = uuid.uuid4()
    issued = issue(
        key_ring,
        kind=CodeKind.WITHDRAWAL,
        account_id=99,
        amount_vnd=1_500_000,
        now=NOW + dt.timedelta(microseconds=750_000),
        ttl_s=600,
        code_id=code_id,
    )

    claims = verify(issued.token, key_ring, NOW, kind=CodeKind.WITHDRAWAL)

    assert claims == issued.claims
    assert claims == CodeClaims(
        kind=CodeKind.WITHDRAWAL,
        code_id=code_id,
        account_id=99,
        amount_vnd=1_500_000,
        issued_at=NOW,  # whole seconds
        expires_at=NOW + dt.timedelta(seconds=600),
        key_id=1,
    )


def test_a_payment_code_round_trips(key_ring: KeyRing) -> None:
    issued = _payment(key_ring)
    claims = verify(issued.token, key_ring, NOW, kind=CodeKind.PAYMENT)
    assert claims == issued.claims
    assert (claims.biller_id, claims.bill_reference) == (17, "PE04000123456")


def test_the_withdrawal_token_fits_qr_version_9_at_level_q(key_ring: KeyRing) -> None:
    token = _withdrawal(key_ring).token

    assert len(base45.b45decode(token)) == tokens.TOKEN_LENGTH_MIN_BYTES == 108
    assert len(token) == 162
    # Version 9-Q holds 132 data codewords: 1056 bits, less a 4-bit mode and a 9-bit count,
    # leave 94 pairs of characters at 11 bits and one more at 6 bits (ISO/IEC 18004, Table 7).
    assert alphanumeric_capacity_chars(9) == (132 * 8 - 4 - 9) // 11 * 2 + 1 == 189
    assert len(token) <= alphanumeric_capacity_chars(9)
    assert qr_version_for(token) == 9


def test_the_longest_payment_token_fits_version_10(key_ring: KeyRing) -> None:
    token = _payment(key_ring, reference="9" * tokens.BILL_REFERENCE_LENGTH_MAX_BYTES).token
    assert len(token) == tokens.TOKEN_LENGTH_MAX_CHARS
    assert qr_version_for(token) == 10


# --- Tampering ------------------------------------------------------------------------------------


def _expected_refusal(position: int) -> type[CodeError]:
    if position == 0:
        return MalformedCode  # the format version
    if position in (1, 2):
        return UnknownSigningKey  # the key id: this ring has only key 1
    return BadSignature


def test_every_single_byte_change_is_refused(key_ring: KeyRing) -> None:
    data = base45.b45decode(_withdrawal(key_ring).token)
    for position in range(len(data)):
        for changed in {data[position] ^ 0x01, data[position] ^ 0x80, data[position] ^ 0xFF, 0}:
            if changed == data[position]:
                continue
            tampered = data[:position] + bytes([changed]) + data[position + 1 :]
            with pytest.raises(_expected_refusal(position)):
                verify(base45.b45encode(tampered).decode(), key_ring, NOW)


def test_every_single_byte_change_of_a_payment_code_is_refused(key_ring: KeyRing) -> None:
    data = base45.b45decode(_payment(key_ring).token)
    for position in range(len(data)):
        tampered = data[:position] + bytes([data[position] ^ 0x20]) + data[position + 1 :]
        with pytest.raises(CodeError):
            verify(base45.b45encode(tampered).decode(), key_ring, NOW)


def test_every_single_character_change_is_refused(key_ring: KeyRing) -> None:
    token = _withdrawal(key_ring).token
    outside_base45 = ["a", "z", "!", "_", "\n", "\x00", "é", "Đ"]
    for position, original in enumerate(token):
        following = BASE45_ALPHABET[(BASE45_ALPHABET.index(original) + 1) % 45]
        for replacement in ["0", "Z", " ", ":", following, *outside_base45]:
            if replacement == original:
                continue
            tampered = token[:position] + replacement + token[position + 1 :]
            with pytest.raises(CodeError):
                verify(tampered, key_ring, NOW)


def test_truncated_tokens_are_refused(key_ring: KeyRing) -> None:
    token = _withdrawal(key_ring).token
    for length in range(len(token)):
        with pytest.raises(CodeError):
            verify(token[:length], key_ring, NOW)
    for start in range(1, len(token)):
        with pytest.raises(CodeError):
            verify(token[start:], key_ring, NOW)


@pytest.mark.parametrize("suffix", ["0", "00", "000", "::", " ", "\n", "\r\n", "0" * 60, "0" * 300])
def test_extended_tokens_are_refused(key_ring: KeyRing, suffix: str) -> None:
    token = _withdrawal(key_ring).token
    with pytest.raises(CodeError):
        verify(token + suffix, key_ring, NOW)
    with pytest.raises(CodeError):
        verify(suffix + token, key_ring, NOW)


def test_a_token_signed_by_a_key_outside_the_ring_is_refused(
    key_ring: KeyRing, tmp_path: Path
) -> None:
    # Another ring's key 1 shares our key's id but not its key: the signature fails.
    generate_key(tmp_path / "same-id")
    same_id = _withdrawal(load_key_ring(tmp_path / "same-id")).token
    with pytest.raises(BadSignature):
        verify(same_id, key_ring, NOW)
    # Another ring's key 2 is not in our ring at all.
    generate_key(tmp_path / "other-id")
    rotate(tmp_path / "other-id")
    other_id = _withdrawal(load_key_ring(tmp_path / "other-id")).token
    with pytest.raises(UnknownSigningKey) as refused:
        verify(other_id, key_ring, NOW)
    assert refused.value.code == "unknown_signing_key"


def test_a_signature_over_the_body_without_the_domain_prefix_is_refused(
    key_ring: KeyRing,
) -> None:
    data = base45.b45decode(_withdrawal(key_ring).token)
    body = data[: -tokens.SIGNATURE_LENGTH_BYTES]
    undomained = body + key_ring.signer.sign(body)
    with pytest.raises(BadSignature):
        verify(base45.b45encode(undomained).decode(), key_ring, NOW)


# --- Kind, time, refresh -------------------------------------------------------------------------


def test_the_wrong_kind_is_refused(key_ring: KeyRing) -> None:
    with pytest.raises(WrongCodeKind):
        verify(_withdrawal(key_ring).token, key_ring, NOW, kind=CodeKind.PAYMENT)
    with pytest.raises(WrongCodeKind):
        verify(_payment(key_ring).token, key_ring, NOW, kind=CodeKind.WITHDRAWAL)


def test_a_code_expires_at_its_expiry_time(key_ring: KeyRing) -> None:
    issued = _withdrawal(key_ring, ttl_s=900)
    last_valid = issued.claims.expires_at - dt.timedelta(microseconds=1)
    assert verify(issued.token, key_ring, last_valid) == issued.claims
    with pytest.raises(CodeExpired) as refused:
        verify(issued.token, key_ring, issued.claims.expires_at)
    assert refused.value.code == "code_expired"


def test_the_kind_is_checked_before_expiry(key_ring: KeyRing) -> None:
    issued = _withdrawal(key_ring)
    with pytest.raises(WrongCodeKind):
        verify(issued.token, key_ring, issued.claims.expires_at, kind=CodeKind.PAYMENT)


def test_a_code_issued_in_the_future_is_refused_beyond_the_clock_skew(key_ring: KeyRing) -> None:
    token = _withdrawal(key_ring, now=NOW + dt.timedelta(seconds=tokens.CLOCK_SKEW_MAX_S)).token
    assert verify(token, key_ring, NOW).issued_at > NOW
    token = _withdrawal(key_ring, now=NOW + dt.timedelta(seconds=tokens.CLOCK_SKEW_MAX_S + 1)).token
    with pytest.raises(CodeNotYetValid):
        verify(token, key_ring, NOW)


def test_a_screenshot_goes_stale_and_a_refreshed_code_does_not(key_ring: KeyRing) -> None:
    first = _withdrawal(key_ring)
    later = NOW + dt.timedelta(seconds=tokens.CODE_AGE_MAX_S + 1)

    assert verify(first.token, key_ring, later) == first.claims  # no age limit asked
    with pytest.raises(CodeStale) as refused:
        verify(first.token, key_ring, later, max_age_s=tokens.CODE_AGE_MAX_S)
    assert isinstance(refused.value, CodeExpired)
    assert refused.value.code == "code_stale"

    refreshed = reissue(first.claims, key_ring, later - dt.timedelta(seconds=5))
    claims = verify(refreshed.token, key_ring, later, max_age_s=tokens.CODE_AGE_MAX_S)
    assert refreshed.token != first.token
    assert claims.issued_at == later - dt.timedelta(seconds=5)
    for field in ("kind", "code_id", "account_id", "amount_vnd", "expires_at"):
        assert getattr(claims, field) == getattr(first.claims, field)


def test_an_expired_code_is_not_reissued(key_ring: KeyRing) -> None:
    issued = _withdrawal(key_ring)
    with pytest.raises(CodeExpired):
        reissue(issued.claims, key_ring, issued.claims.expires_at)


def test_a_reissue_after_rotation_moves_the_code_to_the_new_key(tmp_path: Path) -> None:
    generate_key(tmp_path)
    issued = _withdrawal(load_key_ring(tmp_path))
    rotate(tmp_path)
    ring = load_key_ring(tmp_path)
    refreshed = reissue(issued.claims, ring, NOW + dt.timedelta(seconds=30))
    assert verify(refreshed.token, ring, NOW + dt.timedelta(seconds=31)).key_id == 2


# --- Errors ---------------------------------------------------------------------------------------


def test_error_codes_are_distinct_and_messages_say_nothing_of_the_token(key_ring: KeyRing) -> None:
    classes = [
        CodeError,
        MalformedCode,
        UnknownSigningKey,
        tokens.RetiredSigningKey,
        BadSignature,
        WrongCodeKind,
        CodeExpired,
        CodeStale,
        CodeNotYetValid,
    ]
    assert len({cls.code for cls in classes}) == len(classes)
    token = _withdrawal(key_ring).token
    with pytest.raises(CodeError) as refused:
        verify(token[:-3] + "000", key_ring, NOW)
    assert str(refused.value) == refused.value.message
    assert token[:20] not in str(refused.value)


@pytest.mark.parametrize(
    "change",
    [
        {"amount_vnd": 0},
        {"amount_vnd": -5},
        {"amount_vnd": 2**63},
        {"account_id": 0},
        {"ttl_s": 0},
        {"ttl_s": tokens.CODE_TTL_MAX_S + 1},
        {"now": dt.datetime(2025, 9, 1, 8, 0)},  # naive  # noqa: DTZ001
        {"biller_id": 3},
        {"bill_reference": "X"},
    ],
)
def test_issue_refuses_bad_withdrawal_arguments(
    key_ring: KeyRing, change: dict[str, object]
) -> None:
    arguments: dict[str, object] = {
        "kind": CodeKind.WITHDRAWAL,
        "account_id": 1,
        "amount_vnd": 100_000,
        "now": NOW,
        "ttl_s": 900,
        **change,
    }
    with pytest.raises(ValueError):
        issue(key_ring, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("biller_id", "bill_reference"),
    [
        (None, "PE1"),
        (0, "PE1"),
        (2**32, "PE1"),
        (1, None),
        (1, ""),
        (1, "pe1"),
        (1, "A B"),
        (1, "Đ1"),
        (1, "9" * (tokens.BILL_REFERENCE_LENGTH_MAX_BYTES + 1)),
    ],
)
def test_issue_refuses_bad_payment_arguments(
    key_ring: KeyRing, biller_id: int | None, bill_reference: str | None
) -> None:
    with pytest.raises(ValueError):
        issue(
            key_ring,
            kind=CodeKind.PAYMENT,
            account_id=1,
            amount_vnd=100_000,
            now=NOW,
            ttl_s=900,
            biller_id=biller_id,
            bill_reference=bill_reference,
        )


# --- Properties -----------------------------------------------------------------------------------

_times = st.datetimes(
    min_value=dt.datetime(2000, 1, 1),  # noqa: DTZ001 — hypothesis wants naive bounds
    max_value=dt.datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(dt.UTC),
)
_references = st.from_regex(r"[0-9A-Z./-]{1,24}", fullmatch=True)


@st.composite
def _issue_arguments(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(CodeKind))
    payment = kind == CodeKind.PAYMENT
    return {
        "kind": kind,
        "account_id": draw(st.integers(1, tokens.ACCOUNT_ID_MAX)),
        "amount_vnd": draw(st.integers(1, tokens.AMOUNT_MAX_VND)),
        "now": draw(_times),
        "ttl_s": draw(st.integers(1, tokens.CODE_TTL_MAX_S)),
        "code_id": draw(st.uuids()),
        "biller_id": draw(st.integers(1, tokens.BILLER_ID_MAX)) if payment else None,
        "bill_reference": draw(_references) if payment else None,
    }


@given(arguments=_issue_arguments(), age_s=st.integers(0, tokens.CODE_TTL_MAX_S))
def test_issue_then_verify_round_trips(
    key_ring: KeyRing, arguments: dict[str, Any], age_s: int
) -> None:
    issued = issue(key_ring, **arguments)
    ttl = dt.timedelta(seconds=arguments["ttl_s"])
    at = issued.claims.issued_at + min(dt.timedelta(seconds=age_s), ttl - dt.timedelta(seconds=1))

    assert verify(issued.token, key_ring, at, kind=arguments["kind"]) == issued.claims
    assert issued.claims.expires_at - issued.claims.issued_at == ttl
    assert issued.claims.code_id == arguments["code_id"]
    assert (
        issued.claims.issued_at
        <= arguments["now"]
        < issued.claims.issued_at + dt.timedelta(seconds=1)
    )
    payment = arguments["kind"] == CodeKind.PAYMENT
    assert qr_version_for(issued.token) <= (10 if payment else 9)


@given(st.text(max_size=250))
def test_any_text_is_refused_with_a_code_error(key_ring: KeyRing, text: str) -> None:
    with pytest.raises(CodeError):
        verify(text, key_ring, NOW)


@given(st.binary(max_size=160))
def test_any_bytes_are_refused_with_a_code_error(key_ring: KeyRing, data: bytes) -> None:
    with pytest.raises(CodeError):
        verify(base45.b45encode(data).decode(), key_ring, NOW)
