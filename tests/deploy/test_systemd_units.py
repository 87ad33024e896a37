"""deploy/systemd/: `systemd-analyze verify`, the hardening every unit shares, the timers' times,
and that each command a unit runs is a real `softatm` command."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from tests.deploy.conftest import (
    PROJECT_ROOT,
    UNITS_DIR,
    debian_tool,
    resolve_softatm_command,
    run,
    unit,
    unknown_settings,
)

INSTALL_PREFIX = "/opt/softatm"
SERVICES = sorted(UNITS_DIR.glob("*.service"))
TIMERS = sorted(UNITS_DIR.glob("*.timer"))
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
    "SystemCallFilter": "@system-service",
    "User": "softatm",
    "EnvironmentFile": "/etc/softatm/softatm.env",
    "WorkingDirectory": f"{INSTALL_PREFIX}/app",
}


def test_the_expected_units_exist() -> None:
    assert [path.name for path in SERVICES] == [
        "softatm-adoption-rollup.service",
        "softatm-backup.service",
        "softatm-drawer-report.service",
        "softatm-migrate.service",
        "softatm-sweep.service",
        "softatm-verify.service",
        "softatm.service",
    ]
    # Every timer starts the service of its name.
    assert {path.stem for path in TIMERS} == {
        "softatm-adoption-rollup",
        "softatm-backup",
        "softatm-drawer-report",
        "softatm-sweep",
        "softatm-verify",
    }


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """The units as they are, but for the install prefix: verify checks that each command is an
    executable file, so /opt/softatm is mapped to a stand-in tree of empty scripts here."""
    systemd_analyze = debian_tool("systemd-analyze", "systemd")
    prefix = tmp_path / "opt" / "softatm"
    for command in ("venv/bin/gunicorn", "venv/bin/softatm"):
        path = prefix / command
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    units = tmp_path / "units"
    units.mkdir()
    for source in [*SERVICES, *TIMERS]:
        (units / source.name).write_text(source.read_text().replace(INSTALL_PREFIX, str(prefix)))
    result = run(
        [systemd_analyze, "verify", "--man=no", *sorted(units.iterdir())],
        cwd=units,
    )
    output = (result.stdout + result.stderr).strip()
    # Unknown keys and bad values are warnings with exit code 0: any output at all is a finding.
    assert result.returncode == 0 and output == "", output


@pytest.mark.parametrize("path", SERVICES, ids=lambda path: path.name)
def test_services_are_hardened(path: Path) -> None:
    service = unit(path)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == value, f"{path.name}: {key}"
    assert service.get("UMask") in {"0077", "0027"}


def test_the_web_service() -> None:
    web = unit(UNITS_DIR / "softatm.service")
    assert web["Unit"]["Requires"] == "softatm-migrate.service"
    assert "softatm-migrate.service" in web["Unit"]["After"]
    service = web["Service"]
    assert service["Type"] == "notify"
    assert service["ExecStart"] == (
        f"{INSTALL_PREFIX}/venv/bin/gunicorn -c {INSTALL_PREFIX}/app/deploy/gunicorn.conf.py "
        "kiosk.wsgi:app"
    )
    assert service["ExecReload"] == "/bin/kill -s HUP $MAINPID"
    assert service["RuntimeDirectory"] == "softatm"
    assert (
        "PROMETHEUS_MULTIPROC_DIR=/run/softatm/metrics"
        in (UNITS_DIR / "softatm.service").read_text()
    )
    for path in SERVICES:
        assert unknown_settings(path.read_text()) == set(), path.name
    assert web["Install"]["WantedBy"] == "multi-user.target"
    assert unit(UNITS_DIR / "softatm-migrate.service")["Service"]["Type"] == "oneshot"


@pytest.mark.parametrize(
    ("name", "when"),
    [
        ("softatm-sweep", "minutely"),
        ("softatm-adoption-rollup", "minutely"),
        ("softatm-verify", "*-*-* 02:30:00 Asia/Ho_Chi_Minh"),
        ("softatm-drawer-report", "*-*-* 00:30:00 Asia/Ho_Chi_Minh"),
        ("softatm-backup", "*-*-* 01:30:00 Asia/Ho_Chi_Minh"),
    ],
)
def test_timers(name: str, when: str) -> None:
    timer = unit(UNITS_DIR / f"{name}.timer")
    assert timer["Timer"]["OnCalendar"] == when
    assert timer["Install"]["WantedBy"] == "timers.target"
    assert unit(UNITS_DIR / f"{name}.service")["Service"]["Type"] == "oneshot"


@pytest.mark.parametrize("path", SERVICES, ids=lambda path: path.name)
def test_each_command_exists(path: Path) -> None:
    words = shlex.split(unit(path)["Service"]["ExecStart"])
    program = words[0].removeprefix(f"{INSTALL_PREFIX}/venv/bin/")
    if program == "softatm":
        resolve_softatm_command(words[1:])
    elif program == "gunicorn":
        assert (PROJECT_ROOT / words[2].removeprefix(f"{INSTALL_PREFIX}/app/")).is_file()
    else:
        assert words[0] == "/bin/bash"
        assert (PROJECT_ROOT / words[1].removeprefix(f"{INSTALL_PREFIX}/app/")).is_file()


def test_support_files() -> None:
    sysusers = (UNITS_DIR / "softatm.sysusers.conf").read_text()
    assert "\nu softatm - " in sysusers
    tmpfiles = (UNITS_DIR / "softatm.tmpfiles.conf").read_text()
    assert "d /var/lib/softatm/keys 0700 softatm softatm -" in tmpfiles
    assert "d /var/backups/softatm 0700 softatm softatm -" in tmpfiles
