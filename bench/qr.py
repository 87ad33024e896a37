"""QR benchmark: rendering a withdrawal code's QR image, against the qrcode package's defaults.

Figures (stdout, JSON lines), medians over `--qr-iterations` renders of `--qr-tokens` distinct
freshly signed withdrawal tokens:

* `qr_render_ms_median` — `kiosk.codes.qr.render_png`: token to PNG bytes with a fixed version
  (from the token's length), a fixed mask, level Q, 8 px per module; `baseline` and `ratio`
  compare it with the next figure;
* `qr_render_default_ms_median` — `qrcode.make(token)` with the library's defaults (best-fit
  version, all eight masks tried and scored, level M, 10 px per module) saved as PNG;
* `token_verify_us_median` — `kiosk.codes.tokens.verify` of a withdrawal token (Base45, Ed25519);
* `qr_png_size_bytes` — the size of our PNG, with the default PNG's size as its baseline.

The two renderers alternate, in turns that swap which goes first, so that a busy neighbour on the
machine slows both alike. Before anything is timed, both images of every token are decoded with
zxing-cpp (when installed) and must give back the token: a fast image that does not scan would be
worth nothing. Run with `python -m bench qr` or `python -m bench.qr`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import qrcode  # type: ignore[import-untyped]  # no type information published
from PIL import Image

from bench import common
from bench.common import BenchmarkError, log
from kiosk.codes import (
    WITHDRAWAL_CODE_TTL_S,
    CodeKind,
    generate_key,
    issue,
    load_key_ring,
    verify,
)
from kiosk.codes.qr import QR_MODULE_SIZE_DEFAULT_PX, qr_version_for, render_png

# Plausible values; the fields are fixed-width, so they do not change the token's length.
AMOUNT_VND = 10_000_000
ACCOUNT_ID = 9_876_543_210
WARMUP_ITERATIONS = 10
RENDER_TARGET_MS = 5.0


def add_arguments(group: argparse._ActionsContainer) -> None:
    group.add_argument(
        "--qr-iterations",
        type=int,
        default=300,
        help="renders timed per renderer, and verifications timed (default: 300)",
    )
    group.add_argument(
        "--qr-tokens",
        type=int,
        default=50,
        help="distinct tokens the renders cycle through (default: 50)",
    )


def run(args: argparse.Namespace | Sequence[str]) -> None:
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(
            prog="python -m bench.qr",
            description="Time QR rendering and token verification; figures as JSON lines.",
        )
        add_arguments(parser)
        args = parser.parse_args(list(args))
    iterations: int = args.qr_iterations
    token_count: int = args.qr_tokens
    if iterations < 1 or token_count < 1:
        raise BenchmarkError("--qr-iterations and --qr-tokens must be positive")

    now = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="softatm-bench-keys-") as keys_dir:
        generate_key(keys_dir)
        key_ring = load_key_ring(keys_dir)
    tokens = [
        issue(
            key_ring,
            kind=CodeKind.WITHDRAWAL,
            account_id=ACCOUNT_ID,
            amount_vnd=AMOUNT_VND,
            now=now,
            ttl_s=WITHDRAWAL_CODE_TTL_S,
        ).token
        for _ in range(token_count)
    ]
    log(
        f"{token_count} withdrawal tokens of {len(tokens[0])} characters, "
        f"QR version {qr_version_for(tokens[0])}-Q, {QR_MODULE_SIZE_DEFAULT_PX} px per module"
    )
    _check_images_scan(tokens)

    log(f"rendering: {iterations} renders each, ours and the library's default, alternating")
    ours, default = _time_alternating(render_png, _render_default_png, tokens, iterations)
    ours_ms = statistics.median(ours.wall_s) * 1e3
    default_ms = statistics.median(default.wall_s) * 1e3
    log(
        f"render median: ours {ours_ms:.3f} ms, default {default_ms:.3f} ms; "
        f"p90 ours {_quantile(ours.wall_s, 0.9) * 1e3:.3f} ms, "
        f"default {_quantile(default.wall_s, 0.9) * 1e3:.3f} ms; "
        f"CPU median ours {statistics.median(ours.cpu_s) * 1e3:.3f} ms, "
        f"default {statistics.median(default.cpu_s) * 1e3:.3f} ms; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    if ours_ms > RENDER_TARGET_MS:
        log(f"WARNING: rendering is above its {RENDER_TARGET_MS} ms target on this machine")
    common.emit("qr_render_ms_median", ours_ms, "ms", baseline=default_ms)
    common.emit("qr_render_default_ms_median", default_ms, "ms")

    log(f"verifying: {iterations} verifications")
    verified = _time_each(lambda token: verify(token, key_ring, now), tokens, iterations)
    common.emit("token_verify_us_median", statistics.median(verified.wall_s) * 1e6, "us")

    common.emit(
        "qr_png_size_bytes",
        statistics.median(len(render_png(token)) for token in tokens),
        "bytes",
        baseline=statistics.median(len(_render_default_png(token)) for token in tokens),
    )


def _render_default_png(token: str) -> bytes:
    buffer = io.BytesIO()
    qrcode.make(token).save(buffer)
    return buffer.getvalue()


def _check_images_scan(tokens: Sequence[str]) -> None:
    try:
        import zxingcpp  # noqa: PLC0415 — a dev tool, optional for the figures themselves

        from kiosk.codes.photo import QR_ONLY  # noqa: PLC0415 — imports zxingcpp
    except ImportError:
        log("zxing-cpp is not installed: the images are not checked by a decoder")
        return
    for token in tokens:
        for renderer in (render_png, _render_default_png):
            image = Image.open(io.BytesIO(renderer(token))).convert("L")
            decoded = [barcode.text for barcode in zxingcpp.read_barcodes(image, formats=QR_ONLY)]
            if decoded != [token]:
                raise BenchmarkError(f"{renderer.__name__}: the image decodes to {decoded!r}")
    log(f"zxing-cpp decodes both renderings of all {len(tokens)} tokens back to the token")


@dataclass(slots=True)
class Timings:
    """Wall-clock seconds (the figure) and this thread's CPU seconds (a diagnostic: on a busy
    machine the wall clock also counts time spent waiting for a CPU)."""

    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)

    def record(self, function: Callable[[str], object], token: str, counted: bool) -> None:
        wall_from, cpu_from = time.perf_counter(), time.thread_time()
        function(token)
        wall, cpu = time.perf_counter() - wall_from, time.thread_time() - cpu_from
        if counted:
            self.wall_s.append(wall)
            self.cpu_s.append(cpu)


def _time_alternating(
    first: Callable[[str], object],
    second: Callable[[str], object],
    tokens: Sequence[str],
    iterations: int,
) -> tuple[Timings, Timings]:
    first_timings, second_timings = Timings(), Timings()
    gc.collect()
    for index in range(WARMUP_ITERATIONS + iterations):
        token = tokens[index % len(tokens)]
        turns = [(first, first_timings), (second, second_timings)]
        if index % 2:
            turns.reverse()
        for function, timings in turns:
            timings.record(function, token, counted=index >= WARMUP_ITERATIONS)
    return first_timings, second_timings


def _time_each(
    function: Callable[[str], object], tokens: Sequence[str], iterations: int
) -> Timings:
    timings = Timings()
    gc.collect()
    for index in range(WARMUP_ITERATIONS + iterations):
        timings.record(function, tokens[index % len(tokens)], counted=index >= WARMUP_ITERATIONS)
    return timings


def _quantile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


if __name__ == "__main__":
    try:
        run(sys.argv[1:])
    except BenchmarkError as error:
        log(f"benchmark qr FAILED: {error}")
        sys.exit(1)
