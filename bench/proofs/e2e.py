"""End to end in a real browser: the citizen's and the agent's whole journey in headless Chromium.

Runs `tests/browser/test_end_to_end.py` with pytest in a child process (the browser test needs
pytest's fixtures: a migrated SQLite database, the app served over HTTP, Debian's Chromium driven
by Playwright). The journey: a citizen registers on a 360 px phone; an agent checks their ID card
in person at the counter and deposits their cash; the citizen makes a withdrawal code; the agent
reads it with the counter's camera — Chromium's fake camera playing a video made from a
screenshot of the QR on the citizen's phone — and pays it out. Each step leaves a screenshot in
test-artifacts/e2e/, which this harness empties first and counts afterwards.

The child runs with CI=true, so a machine without Chromium fails the claim instead of skipping.

Figures: `e2e_steps` (steps of the journey), `e2e_screenshots` (taken by this run, = steps),
`e2e_passed` (1), `e2e_seconds`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import emit, log

CLAIM = (
    "In headless Chromium, a citizen registers on a phone, is verified in person and deposits "
    "cash at the counter, makes a withdrawal code, and an agent reads it by camera and pays it "
    "out — every step through the real pages, each one photographed."
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEST = "tests/browser/test_end_to_end.py"
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "e2e"
DEFAULT_TIMEOUT_S = 600.0
OUTPUT_TAIL_CHARS = 4000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proofs e2e", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--timeout-s",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"give up on the browser test after this long (default: {DEFAULT_TIMEOUT_S:g})",
    )
    return parser


def _steps() -> int:
    from tests.browser.test_end_to_end import STEPS  # noqa: PLC0415

    return len(STEPS)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    command = [sys.executable, "-m", "pytest", TEST, "-q", "-p", "no:cacheprovider"]
    log(f"running {' '.join(command[1:])}")
    began = time.monotonic()
    try:
        process = subprocess.run(
            command,
            cwd=PROJECT_ROOT,
            env={**os.environ, "CI": "true"},
            capture_output=True,
            text=True,
            timeout=args.timeout_s,
            check=False,
        )
        passed = process.returncode == 0
        output = process.stdout + process.stderr
    except subprocess.TimeoutExpired as expired:
        passed = False
        raw = expired.stdout or b""
        captured = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        output = f"timed out after {args.timeout_s:g} s\n{captured}"
    seconds = time.monotonic() - began
    if not passed:
        log(f"the browser test failed:\n{str(output)[-OUTPUT_TAIL_CHARS:]}")
    steps = _steps()
    screenshots = sorted(ARTIFACTS.glob("*.png"))
    log(f"screenshots in {ARTIFACTS.relative_to(PROJECT_ROOT)}: {len(screenshots)}")
    emit("e2e_steps", steps, "steps")
    emit("e2e_screenshots", len(screenshots), "screenshots", directory="test-artifacts/e2e")
    emit("e2e_passed", int(passed), "bool")
    emit("e2e_seconds", round(seconds), "s")
    return 0 if passed and len(screenshots) == steps else 1
