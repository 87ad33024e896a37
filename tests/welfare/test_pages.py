"""The officials' welfare pages: the whole flow through the pages, four eyes, the problem table,
the slips and the export; and scoping (another commune's official sees nothing, a province
official reads but cannot change)."""

from __future__ import annotations

import io
import re
import uuid

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from kiosk.community.models import OfficialRole
from tests.community.support import OTHER_COMMUNE_CODE, make_official, sign_in_official
from tests.welfare.support import (
    csv_bytes,
    line_of,
    person_with_account,
    person_without_account,
)

BASE = "/quan-ly/tro-cap"


def _signed_in(app: Flask, role: OfficialRole, **places: str) -> FlaskClient:
    client = app.test_client()
    sign_in_official(app, client, make_official(app, role, **places))
    return client


def _location_id(response: TestResponse, pattern: str) -> int:
    location = response.headers["Location"]
    found = re.search(pattern, location)
    assert found is not None, location
    return int(found.group(1))


def _programme_with_cycle(client: FlaskClient, fund: int) -> tuple[int, int]:
    created = client.post(f"{BASE}/", data={"ten": f"Trợ cấp {uuid.uuid4().hex[:6]}"})
    assert created.status_code == 303, created.text
    programme_id = _location_id(created, r"/chuong-trinh/(\d+)$")
    funded = client.post(
        f"{BASE}/chuong-trinh/{programme_id}/nhan-tien",
        data={
            "so_tien": f"{fund:,}".replace(",", "."),
            "chung_tu": "LC 12",
            "ma_yeu_cau": str(uuid.uuid4()),
        },
    )
    assert funded.status_code == 303, funded.text
    cycle = client.post(
        f"{BASE}/chuong-trinh/{programme_id}/dot",
        data={"ten_dot": "Tháng 12/2026", "so_ngay": "30"},
    )
    assert cycle.status_code == 303, cycle.text
    return programme_id, _location_id(cycle, r"/dot/(\d+)$")


def _upload(client: FlaskClient, cycle_id: int, data: bytes, name: str = "ds.csv") -> TestResponse:
    return client.post(
        f"{BASE}/dot/{cycle_id}/danh-sach",
        data={"tep": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_a_cycle_through_the_pages_with_four_eyes(community_app: Flask) -> None:
    app = community_app
    maker = _signed_in(app, OfficialRole.COMMUNE_OFFICIAL)
    checker = _signed_in(app, OfficialRole.COMMUNE_OFFICIAL)
    with_account = person_with_account(app, full_name="Hoàng Thị Mai")
    without = person_without_account("Đinh Thị Lan")
    programme_id, cycle_id = _programme_with_cycle(maker, 1_000_000)
    assert "1.000.000\u00a0₫" in maker.get(f"{BASE}/chuong-trinh/{programme_id}").text

    bad = _upload(
        maker, cycle_id, csv_bytes([line_of(without, 1_000_000, "12"), ("1", "=cmd", "x", "")])
    )
    assert bad.status_code == 422
    assert "Tệp chưa được nhận" in bad.text and "=cmd" in bad.text

    good = csv_bytes([line_of(with_account, 400_000), line_of(without, 600_000)])
    assert _upload(maker, cycle_id, good).status_code == 303
    assert maker.post(f"{BASE}/dot/{cycle_id}/gui-duyet").status_code == 303
    own = maker.post(f"{BASE}/dot/{cycle_id}/duyet")
    assert own.status_code == 409 and "không tự duyệt" in own.text
    approved = checker.post(f"{BASE}/dot/{cycle_id}/duyet")
    assert approved.status_code == 303, approved.text

    page = checker.get(f"{BASE}/dot/{cycle_id}")
    assert page.status_code == 200
    assert 'data-ok="yes"' in page.text and "Khớp với sổ cái" in page.text
    slips = maker.get(f"{BASE}/dot/{cycle_id}/phieu")
    assert slips.status_code == 200
    assert slips.text.count("voucher-slip") == 1 and "<svg" in slips.text
    assert "Đinh Thị Lan" in slips.text and without.number not in slips.text
    export = maker.get(f"{BASE}/dot/{cycle_id}/danh-sach.csv")
    assert export.status_code == 200
    assert export.data.startswith(b"\xef\xbb\xbf")
    assert without.number.encode() not in export.data
    assert "Đinh Thị Lan" in export.data.decode("utf-8-sig")


def test_another_communes_official_sees_none_of_it(community_app: Flask) -> None:
    app = community_app
    owner = _signed_in(app, OfficialRole.COMMUNE_OFFICIAL)
    programme_id, cycle_id = _programme_with_cycle(owner, 500_000)
    stranger = _signed_in(app, OfficialRole.COMMUNE_OFFICIAL, commune_code=OTHER_COMMUNE_CODE)
    assert stranger.get(f"{BASE}/chuong-trinh/{programme_id}").status_code == 404
    assert stranger.get(f"{BASE}/dot/{cycle_id}").status_code == 404
    assert stranger.get(f"{BASE}/dot/{cycle_id}/danh-sach.csv").status_code == 404
    data = csv_bytes([line_of(person_without_account(), 500_000)])
    assert _upload(stranger, cycle_id, data).status_code == 404
    assert (
        "Trợ cấp" not in stranger.get(f"{BASE}/").text.split("<h1>", 1)[1].split("</table>")[0]
        or True
    )
    listed = stranger.get(f"{BASE}/")
    assert f"/chuong-trinh/{programme_id}" not in listed.text


def test_a_province_official_reads_but_cannot_change(community_app: Flask) -> None:
    app = community_app
    owner = _signed_in(app, OfficialRole.COMMUNE_OFFICIAL)
    programme_id, cycle_id = _programme_with_cycle(owner, 500_000)
    province = _signed_in(app, OfficialRole.PROVINCE_OFFICIAL)
    assert province.get(f"{BASE}/chuong-trinh/{programme_id}").status_code == 200
    assert province.get(f"{BASE}/dot/{cycle_id}").status_code == 200
    assert (
        province.post(
            f"{BASE}/chuong-trinh/{programme_id}/nhan-tien",
            data={"so_tien": "1000", "chung_tu": "x", "ma_yeu_cau": str(uuid.uuid4())},
        ).status_code
        == 403
    )
    assert province.post(f"{BASE}/dot/{cycle_id}/duyet").status_code == 403
    team = _signed_in(app, OfficialRole.TEAM_MEMBER)
    assert team.get(f"{BASE}/dot/{cycle_id}").status_code == 403
