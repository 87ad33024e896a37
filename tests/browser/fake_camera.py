"""A fake camera for Chromium: a Y4M video of a still picture, for
``--use-file-for-fake-video-capture``.

Chromium plays the file in a loop as the only camera when it is started with
``--use-fake-device-for-media-stream`` (and ``--use-fake-ui-for-media-stream`` answers the
permission prompt). The file is raw 4:2:0 video: a YUV4MPEG2 header, then for each frame
``FRAME\\n``, the luma plane at full size and the two chroma planes at half width and height.
A picture in shades of grey has neutral chroma (128), so its luma is the picture itself.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from kiosk.codes import qr

FRAME_WIDTH_PX = 640
FRAME_HEIGHT_PX = 480
FRAMES_PER_SECOND = 10
# A few frames are enough: Chromium loops the file.
FRAME_COUNT = 5
# White around the symbol beyond its own quiet zone, as a phone held a little away would show.
FRAME_MARGIN_PX = 40
NEUTRAL_CHROMA = 128


def qr_frame(text: str, width: int = FRAME_WIDTH_PX, height: int = FRAME_HEIGHT_PX) -> Image.Image:
    """``text`` as a QR symbol (with its quiet zone) centred on a white greyscale frame, scaled
    by whole pixels per module to the largest size that fits."""
    modules_with_quiet_zone = len(qr.qr_modules(text)) + 2 * qr.QR_QUIET_ZONE_MODULES
    module_px = (min(width, height) - 2 * FRAME_MARGIN_PX) // modules_with_quiet_zone
    assert module_px >= qr.QR_MODULE_SIZE_MIN_PX, "the frame is too small for this symbol"
    symbol = qr.render_image(text, module_size_px=module_px).convert("L")
    frame = Image.new("L", (width, height), 255)
    frame.paste(symbol, ((width - symbol.width) // 2, (height - symbol.height) // 2))
    return frame


def write_y4m(picture: Image.Image, path: Path, frames: int = FRAME_COUNT) -> Path:
    """``picture`` (converted to grey) as a Y4M file of ``frames`` identical frames."""
    grey = picture.convert("L")
    width, height = grey.size
    assert width % 2 == 0 and height % 2 == 0, "4:2:0 needs even dimensions"
    header = f"YUV4MPEG2 W{width} H{height} F{FRAMES_PER_SECOND}:1 Ip A1:1 C420jpeg\n"
    chroma = bytes([NEUTRAL_CHROMA]) * ((width // 2) * (height // 2))
    frame = b"FRAME\n" + grey.tobytes() + chroma + chroma
    path.write_bytes(header.encode("ascii") + frame * frames)
    return path


def qr_video(text: str, path: Path) -> Path:
    """A fake-camera file showing ``text`` as a QR code."""
    return write_y4m(qr_frame(text), path)
