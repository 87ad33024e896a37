"""QR images of codes: an independent decoder (zxing-cpp) reads back the token that was issued."""

import datetime as dt
import io
import re
from typing import cast

import pytest
import qrcode  # type: ignore[import-untyped]
import zxingcpp
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from qrcode.util import MODE_ALPHA_NUM, QRData, create_data  # type: ignore[import-untyped]

from kiosk.codes import qr
from kiosk.codes.photo import QR_ONLY
from kiosk.codes.signing import KeyRing, generate_key, load_key_ring
from kiosk.codes.tokens import CodeKind, issue, verify

NOW = dt.datetime(2025, 9, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def key_ring(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    keys_dir = tmp_path_factory.mktemp("qr-keys")
    generate_key(keys_dir)
    return load_key_ring(keys_dir)


def _withdrawal_token(key_ring: KeyRing) -> str:
    return issue(
        key_ring,
        kind=CodeKind.WITHDRAWAL,
        account_id=1_234_567,
        amount_vnd=3_000_000,
        now=NOW,
        ttl_s=900,
    ).token


def _payment_token(key_ring: KeyRing) -> str:
    return issue(
        key_ring,
        kind=CodeKind.PAYMENT,
        account_id=1_234_567,
        amount_vnd=356_000,
        now=NOW,
        ttl_s=3600,
        biller_id=17,
        bill_reference="HS2025-0042/HK1",
    ).token


def _decode(image: Image.Image) -> zxingcpp.Barcode:
    barcodes = zxingcpp.read_barcodes(image.convert("L"), formats=QR_ONLY)
    assert len(barcodes) == 1
    return barcodes[0]


def _extra(barcode: zxingcpp.Barcode) -> dict[str, object]:
    """What the decoder saw of the symbol: version, error-correction level, mask."""
    return cast(dict[str, object], barcode.extra)


def test_the_png_decodes_to_the_issued_token_as_version_9_q(key_ring: KeyRing) -> None:
    for _ in range(10):
        token = _withdrawal_token(key_ring)

        barcode = _decode(Image.open(io.BytesIO(qr.render_png(token))))

        assert barcode.text == token
        assert barcode.format == zxingcpp.BarcodeFormat.QRCode
        extra = _extra(barcode)
        assert extra["Version"] == "9"
        assert extra["ECLevel"] == "Q"
        assert extra["DataMask"] == qr.QR_MASK_PATTERN
        assert verify(barcode.text, key_ring, NOW, kind=CodeKind.WITHDRAWAL)


def test_a_payment_code_decodes_too(key_ring: KeyRing) -> None:
    token = _payment_token(key_ring)
    barcode = _decode(qr.render_image(token))
    assert barcode.text == token
    assert _extra(barcode)["Version"] == str(qr.qr_version_for(token))
    assert verify(barcode.text, key_ring, NOW).bill_reference == "HS2025-0042/HK1"


def test_the_smallest_module_size_still_decodes(key_ring: KeyRing) -> None:
    token = _withdrawal_token(key_ring)
    image = qr.render_image(token, module_size_px=qr.QR_MODULE_SIZE_MIN_PX)
    assert image.size == ((53 + 8) * 4, (53 + 8) * 4)
    assert _decode(image).text == token


def test_the_png_is_one_bit_with_whole_pixel_modules_and_a_quiet_zone(key_ring: KeyRing) -> None:
    token = _withdrawal_token(key_ring)
    modules = qr.qr_modules(token)
    size_px = qr.QR_MODULE_SIZE_DEFAULT_PX
    quiet = qr.QR_QUIET_ZONE_MODULES

    image = Image.open(io.BytesIO(qr.render_png(token)))
    image.load()

    assert len(modules) == 4 * 9 + 17
    side = len(modules) + 2 * quiet
    assert image.format == "PNG"
    assert image.mode == "1"
    assert image.size == (side * size_px, side * size_px)
    grey = image.convert("L")
    # Every pixel of a module has the module's colour (no blurred edges), quiet zone included.
    for row in range(side):
        for column in range(side):
            inside = quiet <= row < side - quiet and quiet <= column < side - quiet
            dark = inside and modules[row - quiet][column - quiet]
            box = (column * size_px, row * size_px, (column + 1) * size_px, (row + 1) * size_px)
            assert grey.crop(box).getextrema() == ((0, 0) if dark else (255, 255))


def test_the_svg_draws_exactly_the_dark_modules(key_ring: KeyRing) -> None:
    token = _withdrawal_token(key_ring)
    modules = qr.qr_modules(token)
    quiet = qr.QR_QUIET_ZONE_MODULES
    side = len(modules) + 2 * quiet

    svg = qr.render_svg(token)

    assert svg.startswith("<svg ")
    assert f'viewBox="0 0 {side} {side}"' in svg
    assert 'shape-rendering="crispEdges"' in svg
    drawn = [[False] * len(modules) for _ in modules]
    for x, y, width in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\3z", svg):
        for column in range(int(x), int(x) + int(width)):
            drawn[int(y) - quiet][column - quiet] = True
    assert drawn == modules


@given(st.text(alphabet=qr.ALPHANUMERIC_CHARACTERS, min_size=1, max_size=400))
def test_the_codewords_are_those_of_the_library(text: str) -> None:
    version = qr.qr_version_for(text)
    expected = create_data(version, qr.QR_ERROR_CORRECTION, [QRData(text, mode=MODE_ALPHA_NUM)])
    assert qr.data_codewords(text, version) == expected


def test_the_symbol_is_the_one_the_library_builds_alone(key_ring: KeyRing) -> None:
    for token in (_withdrawal_token(key_ring), _payment_token(key_ring)):
        library = qrcode.QRCode(
            version=qr.qr_version_for(token),
            error_correction=qr.QR_ERROR_CORRECTION,
            mask_pattern=qr.QR_MASK_PATTERN,
        )
        library.add_data(QRData(token, mode=MODE_ALPHA_NUM))
        library.make(fit=False)
        assert qr.qr_modules(token) == library.modules


def test_the_library_uses_the_precomputed_codewords(
    key_ring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    # If a new qrcode ignored them, images would still be right but the render slower again.
    def refuse(*_arguments: object) -> None:
        raise AssertionError("qrcode computed the codewords itself")

    monkeypatch.setattr(qrcode.util, "create_data", refuse)
    token = _withdrawal_token(key_ring)
    assert _decode(qr.render_image(token)).text == token


def test_the_version_is_the_smallest_that_fits() -> None:
    # Alphanumeric capacities at level Q from ISO/IEC 18004, Table 7.
    assert [qr.alphanumeric_capacity_chars(v) for v in (1, 8, 9, 10, 40)] == [
        16,
        157,
        189,
        221,
        2420,
    ]
    assert qr.qr_version_for("A" * 189) == 9
    assert qr.qr_version_for("A" * 190) == 10
    assert qr.qr_version_for("0") == 1


@pytest.mark.parametrize("text", ["", "abc", "A_B", "ÀB", "A\nB"])
def test_text_outside_the_alphanumeric_set_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="alphanumeric"):
        qr.render_png(text)


@pytest.mark.parametrize("module_size_px", [0, 3, qr.QR_MODULE_SIZE_MAX_PX + 1])
def test_a_module_size_out_of_range_is_refused(module_size_px: int) -> None:
    with pytest.raises(ValueError, match="module_size_px"):
        qr.render_png("ABC", module_size_px=module_size_px)
