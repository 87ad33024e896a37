"""Reading a QR code from a photo or a camera frame, on the server (zxing-cpp).

Used where the browser cannot decode by itself: a photo uploaded by a citizen or an agent, and
the agent portal's live camera on browsers without BarcodeDetector (desktop Chromium on Linux and
Windows), which posts a frame or two a second.
"""

from __future__ import annotations

import io
import warnings

import zxingcpp
from PIL import Image, UnidentifiedImageError

# A phone photo is scaled down to this before decoding: a QR filling a fraction of the frame
# still has several pixels per module, and decoding a 12-megapixel photo would take seconds.
PHOTO_DECODE_SIDE_MAX_PX = 1600
# A phone camera makes at most ~50 MP; a file claiming more is refused before it is decoded
# (a small file can declare a huge image: a decompression bomb).
PHOTO_PIXELS_MAX = 60_000_000

# QR symbols only: a QR code's modules also read as a short linear barcode (ITF, UPC-E,
# Codabar) in about one image of two hundred, which a decoder looking for every format reports
# as a second symbol.
QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


def decode_qr(data: bytes) -> str | None:
    """The text of the first readable QR code in the image ``data``, or None."""
    try:
        with warnings.catch_warnings():
            # Pillow warns, then raises, about very large images; both mean "unreadable" here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
            if opened.width * opened.height > PHOTO_PIXELS_MAX:
                return None
            # JPEG photos decode straight to grey at a fraction of their size: much faster.
            opened.draft("L", (PHOTO_DECODE_SIDE_MAX_PX, PHOTO_DECODE_SIDE_MAX_PX))
            picture = opened.convert("L")
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ):
        return None
    picture.thumbnail((PHOTO_DECODE_SIDE_MAX_PX, PHOTO_DECODE_SIDE_MAX_PX))
    found = zxingcpp.read_barcodes(picture, formats=QR_ONLY)
    texts = [barcode.text for barcode in found if barcode.valid and barcode.text]
    return texts[0] if texts else None
