"""Every page on the citizen's core path, with the CSS and scripts it loads, fits in 30 KB
gzip-compressed: a few seconds on a slow 3G connection. (The wallet pages have their own test.)"""

from __future__ import annotations

import gzip
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.kiosk import citizen_support

PAGE_WEIGHT_MAX_BYTES = 30 * 1024


def weight(client: FlaskClient, path: str) -> list[int]:
    response = client.get(path)
    assert response.status_code == 200, path
    html = response.get_data(as_text=True)
    sizes = [len(gzip.compress(response.get_data()))]
    assets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    assets += re.findall(r'<script src="([^"]+)"', html)
    assert assets, "the page should load the site's stylesheet"
    for asset in assets:
        loaded = client.get(asset)
        assert loaded.status_code == 200, asset
        sizes.append(len(gzip.compress(loaded.get_data())))
        loaded.close()
    return sizes


@pytest.mark.parametrize("path", ["/", "/dang-nhap", "/dang-ky"])
def test_public_core_pages_are_light(web_client: FlaskClient, path: str) -> None:
    sizes = weight(web_client, path)
    assert sum(sizes) <= PAGE_WEIGHT_MAX_BYTES, sizes


def test_making_and_showing_a_code_is_light(web_app: Flask, web_client: FlaskClient) -> None:
    web_app.config["WTF_CSRF_ENABLED"] = False
    citizen = citizen_support.make_citizen(web_app, balance_vnd=2_000_000)
    citizen_support.sign_in(web_client, web_app, citizen)
    sizes = weight(web_client, "/rut-tien")
    assert sum(sizes) <= PAGE_WEIGHT_MAX_BYTES, sizes
    made = web_client.post("/rut-tien", data={"so_tien": "500000"})
    assert made.status_code == 303
    sizes = weight(web_client, made.headers["Location"])
    assert sum(sizes) <= PAGE_WEIGHT_MAX_BYTES, sizes
