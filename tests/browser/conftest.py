"""A real browser against the real app: headless Chromium (Debian's package) driven by Playwright.

The app is served by werkzeug in a thread over a migrated SQLite file, with CSRF on, exactly as a
citizen's phone would meet it. Screenshots go to `test-artifacts/` (kept by CI as evidence).
Chromium is installed by `make test` (Debian package `chromium`); a machine without it skips these
tests with a notice — except under CI=true, where its absence is a failure.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from werkzeug.serving import make_server

from kiosk import create_app, database

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE_VIEWPORT: ViewportSize = {"width": 360, "height": 640}
# As the machine's notes advise: no background traffic, which a closed network refuses anyway.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM}: browser tests need the Debian package"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message + " — browser test skipped")
    return CHROMIUM


@pytest.fixture
def live_app(sqlite_template: Path, tmp_path: Path) -> Iterator[Flask]:
    path = tmp_path / "browser.sqlite3"
    shutil.copyfile(sqlite_template, path)
    app = create_app(
        {
            "SOFTATM_ENV": "test",
            "DATABASE_URL": f"sqlite:///{path}",
            "SECRET_KEY": "browser-test-secret-key-of-enough-length",
            "KEYS_DIR": tmp_path / "keys",
        }
    )
    yield app
    database.dispose(app)


@pytest.fixture
def live_url(live_app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def phone_page(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=PHONE_VIEWPORT, locale="vi-VN", is_mobile=True)
        page = context.new_page()
        yield page
        context.close()
        browser.close()


def screenshot(page: object, name: str) -> Path:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    path = ARTIFACTS_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
