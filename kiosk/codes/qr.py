"""Server-side QR images of a code's token: a crisp 1-bit PNG, or an SVG for inline pages.

This module owns how a token becomes a QR symbol. The `qrcode` package builds the symbol, but
with everything that package would otherwise search for fixed in advance:

* error-correction level Q (25 % of the symbol may be lost: a scratched screen, a glare);
* alphanumeric mode, since a Base45 token is exactly QR's alphanumeric alphabet (5.5 bits per
  character; the library's default chunking could fall back to byte mode at 8);
* the smallest version whose capacity fits the text, computed from the capacity table rather
  than by trial encodings (a withdrawal token, 162 characters, is version 9: 53 by 53 modules);
* one mask pattern, QR_MASK_PATTERN, instead of building all eight and scoring each with the
  spec's penalty rules, which is most of the library's default rendering time. Any mask is valid
  for decoders; the penalty only steers away from patterns that confuse a camera. Pattern 2 had
  the lowest mean and worst penalty on version-9 tokens (150 random tokens: mean 2383, worst
  2711, against 2452..2574 and 2807..3034 for the others) and was the best of eight on 37 % of
  them, so fixing it costs little readability.

The data codewords (the bits of the text, padding, and the Reed-Solomon error correction,
interleaved in blocks) are computed here and handed to the library, which then only lays out the
symbol. Its own encoder runs a generic polynomial class and took 0.85 ms of a 2.3 ms render; the
table-driven one below takes 0.2 ms, and the tests hold it equal to the library's, byte for byte.
Should a future `qrcode` stop reading the precomputed codewords, it computes them itself: slower,
never wrong.

Images have a quiet zone of QR_QUIET_ZONE_MODULES light modules, as the spec asks, and whole
pixels per module (at least QR_MODULE_SIZE_MIN_PX) so that no edge is blurred. The PNG is 1-bit
greyscale, about 850 bytes for a withdrawal code: nothing, even over slow 3G.
"""

from __future__ import annotations

import re
import struct
import zlib
from functools import cache

import qrcode  # type: ignore[import-untyped]  # no type information published
from PIL import Image
from qrcode import base as qr_base
from qrcode import util as qr_util

QR_ERROR_CORRECTION: int = qrcode.constants.ERROR_CORRECT_Q
QR_MASK_PATTERN = 2
QR_QUIET_ZONE_MODULES = 4
QR_MODULE_SIZE_MIN_PX = 4
# 61 modules (version 9 with its quiet zone) at 8 px = 488 px: about the width of a cheap phone's
# screen, so the browser scales it by roughly 1 and the scanner sees sharp modules.
QR_MODULE_SIZE_DEFAULT_PX = 8
QR_MODULE_SIZE_MAX_PX = 32
QR_VERSION_MAX = 40

ALPHANUMERIC_CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_ALPHANUMERIC = re.compile(r"[0-9A-Z $%*+\-./:]+")
_ALPHANUMERIC_VALUE = {character: value for value, character in enumerate(ALPHANUMERIC_CHARACTERS)}
_MODE_INDICATOR_ALPHANUMERIC = 0b0010
_PAD_CODEWORDS = (0xEC, 0x11)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# zlib's default: level 9 saves nothing on these images and costs ten times the time.
_PNG_COMPRESSION_LEVEL = 6
# bytes(row) of a boolean row is 0 (light) / 1 (dark); as greyscale, light is white.
_MODULE_TO_GREY = bytes([0xFF, 0x00]) + bytes(254)


def qr_version_for(text: str) -> int:
    """The smallest QR version that holds `text` in alphanumeric mode at level Q."""
    _check_text(text)
    for version in range(1, QR_VERSION_MAX + 1):
        if len(text) <= alphanumeric_capacity_chars(version):
            return version
    raise ValueError(f"{len(text)} characters do not fit any QR version at level Q")


@cache
def alphanumeric_capacity_chars(version: int) -> int:
    """How many alphanumeric characters a version holds at level Q."""
    data_bits: int = qr_util.BIT_LIMIT_TABLE[QR_ERROR_CORRECTION][version]
    # A segment header is the 4-bit mode indicator and the character count; then 11 bits carry
    # two characters and 6 bits a last odd one.
    free_bits = data_bits - 4 - int(qr_util.length_in_bits(qr_util.MODE_ALPHA_NUM, version))
    return 2 * (free_bits // 11) + (1 if free_bits % 11 >= 6 else 0)


def qr_modules(text: str) -> list[list[bool]]:
    """The symbol's modules, row by row, True for dark; no quiet zone."""
    symbol = qrcode.QRCode(
        version=qr_version_for(text),
        error_correction=QR_ERROR_CORRECTION,
        box_size=1,
        border=0,
        mask_pattern=QR_MASK_PATTERN,
    )
    symbol.add_data(qr_util.QRData(text.encode("ascii"), mode=qr_util.MODE_ALPHA_NUM))
    symbol.data_cache = data_codewords(text, symbol.version)
    symbol.make(fit=False)
    modules: list[list[bool]] = symbol.modules
    return modules


def data_codewords(text: str, version: int) -> list[int]:
    """The symbol's codewords: `text` as one alphanumeric segment, padded, with error correction.

    The same bytes as `qrcode.util.create_data` for this one case (ISO/IEC 18004, 7.4 to 7.6).
    """
    _check_text(text)
    blocks = qr_base.rs_blocks(version, QR_ERROR_CORRECTION)
    data_length_bytes = sum(block.data_count for block in blocks)
    count_bits = int(qr_util.length_in_bits(qr_util.MODE_ALPHA_NUM, version))
    # The bit stream as one Python integer: mode, count, then 11 bits per pair of characters.
    bits = (_MODE_INDICATOR_ALPHANUMERIC << count_bits) | len(text)
    length_bits = 4 + count_bits
    values = [_ALPHANUMERIC_VALUE[character] for character in text]
    for index in range(0, len(values) - 1, 2):
        bits = (bits << 11) | (values[index] * 45 + values[index + 1])
    length_bits += 11 * (len(values) // 2)
    if len(values) % 2:
        bits = (bits << 6) | values[-1]
        length_bits += 6
    if length_bits > 8 * data_length_bytes:
        raise ValueError(f"{len(text)} characters do not fit QR version {version} at level Q")
    # Up to four zero bits end the data, then zeros up to a whole byte, then pad codewords.
    terminator_bits = min(4, 8 * data_length_bytes - length_bits)
    terminator_bits += -(length_bits + terminator_bits) % 8
    data = list((bits << terminator_bits).to_bytes((length_bits + terminator_bits) // 8, "big"))
    data += [_PAD_CODEWORDS[index % 2] for index in range(data_length_bytes - len(data))]

    data_blocks: list[list[int]] = []
    correction_blocks: list[list[int]] = []
    offset = 0
    for block in blocks:
        block_data = data[offset : offset + block.data_count]
        offset += block.data_count
        data_blocks.append(block_data)
        correction_blocks.append(_reed_solomon(block_data, block.total_count - block.data_count))
    # Interleave: the first codeword of every block, then the second, and so on (blocks of the
    # second group are one data codeword longer); then the error-correction codewords alike.
    return [
        block[index]
        for blocks_of_kind in (data_blocks, correction_blocks)
        for index in range(max(len(block) for block in blocks_of_kind))
        for block in blocks_of_kind
        if index < len(block)
    ]


def _gf_tables() -> tuple[list[int], list[int]]:
    """Exponent and logarithm tables of GF(256) with QR's polynomial x^8 + x^4 + x^3 + x^2 + 1."""
    exponents = [0] * 512
    logarithms = [0] * 256
    value = 1
    for power in range(255):
        exponents[power] = value
        logarithms[value] = power
        value <<= 1
        if value & 0x100:
            value ^= 0x11D
    # Doubled, so that exponents[a + b] needs no modulo for a, b < 255.
    exponents[255:510] = exponents[:255]
    return exponents, logarithms


_GF_EXPONENTS, _GF_LOGARITHMS = _gf_tables()


@cache
def _generator_logarithms(degree: int) -> tuple[int, ...]:
    """The logarithms of the generator polynomial's coefficients after the leading 1."""
    coefficients = [1]
    for power in range(degree):
        # Multiply by (x + 2^power), powers of the field's generator 2.
        product = [*coefficients, 0]
        for index, coefficient in enumerate(coefficients):
            if coefficient:
                product[index + 1] ^= _GF_EXPONENTS[_GF_LOGARITHMS[coefficient] + power]
        coefficients = product
    return tuple(_GF_LOGARITHMS[coefficient] for coefficient in coefficients[1:])


def _reed_solomon(data: list[int], degree: int) -> list[int]:
    """The remainder of data(x)·x^degree divided by the generator: the correction codewords."""
    generator = _generator_logarithms(degree)
    remainder = [0] * degree
    for codeword in data:
        factor = codeword ^ remainder[0]
        remainder = [*remainder[1:], 0]
        if factor:
            factor_log = _GF_LOGARITHMS[factor]
            for index, coefficient_log in enumerate(generator):
                remainder[index] ^= _GF_EXPONENTS[factor_log + coefficient_log]
    return remainder


def render_image(text: str, *, module_size_px: int = QR_MODULE_SIZE_DEFAULT_PX) -> Image.Image:
    """A 1-bit PIL image of the symbol with its quiet zone."""
    _check_module_size(module_size_px)
    modules = qr_modules(text)
    side = len(modules) + 2 * QR_QUIET_ZONE_MODULES
    margin = b"\xff" * QR_QUIET_ZONE_MODULES
    quiet_rows = b"\xff" * (side * QR_QUIET_ZONE_MODULES)
    pixels = b"".join(
        (
            quiet_rows,
            *(margin + bytes(row).translate(_MODULE_TO_GREY) + margin for row in modules),
            quiet_rows,
        )
    )
    # Draw one pixel per module, then scale by whole pixels: nearest-neighbour keeps every edge
    # sharp, and it is one C call instead of a rectangle per dark module.
    image = Image.frombytes("L", (side, side), pixels).convert("1", dither=Image.Dither.NONE)
    return image.resize((side * module_size_px, side * module_size_px), Image.Resampling.NEAREST)


def render_png(text: str, *, module_size_px: int = QR_MODULE_SIZE_DEFAULT_PX) -> bytes:
    """The symbol as a 1-bit greyscale PNG."""
    return _encode_png(render_image(text, module_size_px=module_size_px))


def _encode_png(image: Image.Image) -> bytes:
    """A 1-bit greyscale PNG of a mode-"1" image, written directly.

    Pillow's encoder tries a filter per row, which took 1 ms of a 2.4 ms render here and gave a
    larger file (1.2 kB) than no filter at all (0.8 kB): the rows of a QR image repeat whole,
    `module_size_px` times each, and deflate finds the repeats by itself.
    """
    assert image.mode == "1"
    width, height = image.size
    # Mode "1" packs each row into whole bytes, most significant bit first, 1 for white: the
    # layout of a 1-bit greyscale PNG scanline, which only needs its filter byte (0: none).
    packed = image.tobytes()
    stride = (width + 7) // 8
    scanlines = b"".join(
        b"\x00" + packed[offset : offset + stride] for offset in range(0, stride * height, stride)
    )
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # depth 1, greyscale
    return b"".join(
        (
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(scanlines, _PNG_COMPRESSION_LEVEL)),
            _png_chunk(b"IEND", b""),
        )
    )


def _png_chunk(kind: bytes, content: bytes) -> bytes:
    checksum = zlib.crc32(kind + content)
    return struct.pack(">I", len(content)) + kind + content + struct.pack(">I", checksum)


def render_svg(text: str, *, module_size_px: int = QR_MODULE_SIZE_DEFAULT_PX) -> str:
    """The symbol as a standalone SVG: one path of dark runs, in module units, scaled by viewBox."""
    _check_module_size(module_size_px)
    modules = qr_modules(text)
    side = len(modules) + 2 * QR_QUIET_ZONE_MODULES
    runs: list[str] = []
    for y, row in enumerate(modules, start=QR_QUIET_ZONE_MODULES):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            start = x
            while x < len(row) and row[x]:
                x += 1
            runs.append(f"M{start + QR_QUIET_ZONE_MODULES} {y}h{x - start}v1h-{x - start}z")
    size_px = side * module_size_px
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size_px}" height="{size_px}" '
        f'viewBox="0 0 {side} {side}" shape-rendering="crispEdges">'
        f'<rect width="{side}" height="{side}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(runs)}"/></svg>'
    )


def _check_text(text: str) -> None:
    # Upper-case Base45 only: any other character would push the library into byte mode.
    if not _ALPHANUMERIC.fullmatch(text):
        raise ValueError("QR text must be non-empty and QR-alphanumeric (upper-case Base45)")


def _check_module_size(module_size_px: int) -> None:
    if not QR_MODULE_SIZE_MIN_PX <= module_size_px <= QR_MODULE_SIZE_MAX_PX:
        raise ValueError(
            f"module_size_px must be in {QR_MODULE_SIZE_MIN_PX}..{QR_MODULE_SIZE_MAX_PX}"
        )
