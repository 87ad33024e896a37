"""deploy/Dockerfile, .dockerignore and deploy/compose.yaml, checked by reading them: no Docker
engine runs here, so nothing is built or started (the files' shape is what can be held fast)."""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY_DIR, PROJECT_ROOT, unknown_settings

DOCKERFILE = DEPLOY_DIR / "Dockerfile"
COMPOSE_FILE = DEPLOY_DIR / "compose.yaml"
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "python3-dev", "libpq-dev")


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [argument for name, argument in self.instructions if name == keyword]


def dockerfile_stages() -> tuple[dict[str, str], list[Stage]]:
    """The global ARG defaults and the stages, with continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    arguments: dict[str, str] = {}
    stages: list[Stage] = []
    for line in (raw.strip() for raw in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        keyword, _, argument = line.partition(" ")
        keyword, argument = keyword.upper(), argument.strip()
        if keyword == "FROM":
            words = argument.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: arguments[m.group(1)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(base, name))
        elif keyword == "ARG" and not stages:
            name, _, default = argument.partition("=")
            arguments[name] = default
        else:
            stages[-1].instructions.append((keyword, argument))
    return arguments, stages


def test_dockerfile_stages() -> None:
    _, stages = dockerfile_stages()
    assert [stage.name for stage in stages] == ["builder", "proxy", "runtime"]
    builder, proxy, runtime = stages
    # The last stage is what `docker build` makes by default: the app.
    assert runtime.base.startswith("python:3.11-slim")
    assert builder.base == runtime.base
    assert proxy.base.startswith("nginx:")
    builder_runs = " ".join(builder.all("RUN"))
    assert "build-essential" in builder_runs
    assert "pybabel compile -d kiosk/translations" in builder_runs
    assert "pip install --no-deps -e ." in builder_runs


def test_runtime_stage_is_small_non_root_and_checked() -> None:
    runtime = dockerfile_stages()[1][-1]
    runs = " ".join(runtime.all("RUN"))
    for tool in BUILD_TOOLS:
        assert not re.search(rf"(^|\s){re.escape(tool)}(\s|$)", runs), tool
    assert "apt-get install" not in runs
    (user,) = runtime.all("USER")
    uid = user.split(":")[0]
    assert uid not in {"0", "root"} and (not uid.isdigit() or int(uid) >= 1000)
    assert runtime.all("COPY") == ["--from=builder /opt/softatm /opt/softatm"]
    (healthcheck,) = runtime.all("HEALTHCHECK")
    assert "http://127.0.0.1:8000/healthz" in healthcheck
    assert "--interval=" in healthcheck and "--timeout=" in healthcheck
    env = " ".join(runtime.all("ENV"))
    assert "BIND=0.0.0.0:8000" in env and "SOFTATM_ENV=production" in env
    assert runtime.all("EXPOSE") == ["8000"]
    (command,) = runtime.all("CMD")
    assert shlex.split(command.strip("[]").replace(",", " ")) == [
        "gunicorn",
        "-c",
        "deploy/gunicorn.conf.py",
        "kiosk.wsgi:app",
    ]


def test_proxy_stage_serves_what_the_nginx_config_names() -> None:
    proxy = dockerfile_stages()[1][1]
    copies = [copy.split() for copy in proxy.all("COPY")]
    config = (DEPLOY_DIR / "nginx" / "softatm.conf").read_text()
    for words in copies:
        source, destination = words[-2], words[-1]
        if words[0] == "--from=builder":
            # The static folders, at the paths softatm.conf's alias lines name.
            assert source == destination
            assert f"alias {destination}/;" in config
            assert (PROJECT_ROOT / source.removeprefix("/opt/softatm/app/")).is_dir()
        else:
            assert (PROJECT_ROOT / source).is_file(), source


def dockerignore_patterns() -> list[str]:
    lines = (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regular expression: anchored at the context's root, "*" and
    "?" within one path segment, "**" across any number of them."""
    text, index, pattern = "", 0, pattern.strip("/")
    while index < len(pattern):
        if pattern.startswith("**/", index):
            text, index = text + "(?:.*/)?", index + 3
        elif pattern.startswith("**", index):
            text, index = text + ".*", index + 2
        else:
            character = pattern[index]
            text += {"*": "[^/]*", "?": "[^/]"}.get(character, re.escape(character))
            index += 1
    return re.compile(text)


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` out of the build context: a pattern matches it or one of
    its folders. (The file uses no "!" exceptions.)"""
    assert not any(pattern.startswith("!") for pattern in patterns)
    parts = path.split("/")
    prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    return any(_pattern(pattern).fullmatch(prefix) for pattern in patterns for prefix in prefixes)


@pytest.mark.parametrize(
    "path",
    [
        "kiosk/__init__.py",
        "kiosk/translations/en/LC_MESSAGES/messages.po",
        "agent_portal/static/agent.css",
        "ledger/__init__.py",
        "templates/base.html",
        "migrations/env.py",
        "alembic.ini",
        "babel.cfg",
        "pyproject.toml",
        "README.md",
        "deploy/gunicorn.conf.py",
        "deploy/scheduler.py",
        "deploy/nginx/softatm.conf",
    ],
)
def test_build_context_keeps_what_the_image_needs(path: str) -> None:
    assert (PROJECT_ROOT / path).exists(), path
    assert not ignored(path, dockerignore_patterns())


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".venv/bin/python",
        ".env",
        "deploy/.env",
        "production.env",
        "var/keys/data/encryption.key",
        "var/softatm.sqlite3",
        "tests/conftest.py",
        "kiosk/__pycache__/cli.cpython-311.pyc",
        "kiosk/translations/en/LC_MESSAGES/messages.mo",
        "deploy/secrets/tls/privkey.pem",
        "privkey.pem",
    ],
)
def test_build_context_leaves_out_secrets_and_local_files(path: str) -> None:
    assert ignored(path, dockerignore_patterns())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def test_compose_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"db", "migrate", "app", "scheduler", "backup", "nginx"}
    db = services["db"]
    assert any(volume.startswith("pgdata:/var/lib/postgresql/data") for volume in db["volumes"])
    assert "pgdata" in compose["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    migrate = services["migrate"]
    assert migrate["command"] == ["softatm", "db-upgrade"] and migrate["restart"] == "no"
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in ("app", "scheduler"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
    assert services["scheduler"]["command"] == ["python", "deploy/scheduler.py"]
    assert services["nginx"]["depends_on"] == {"app": {"condition": "service_healthy"}}
    assert services["nginx"]["build"]["target"] == "proxy"
    assert services["app"]["build"]["target"] == "runtime"
    stage_names = {stage.name for stage in dockerfile_stages()[1]}
    for service in services.values():
        if "build" in service:
            assert service["build"]["dockerfile"] == "deploy/Dockerfile"
            assert service["build"]["target"] in stage_names
    # pg_dump must not be older than the server: the backups run in the server's image.
    assert services["backup"]["image"] == db["image"]


def test_compose_app_services_run_as_the_image_user_read_only(compose: dict[str, Any]) -> None:
    for name in ("migrate", "app", "scheduler"):
        service = compose["services"][name]
        assert service["read_only"] is True and "user" not in service
        assert service["cap_drop"] == ["ALL"]
        assert service["environment"]["SOFTATM_ENV"] == "production"
        assert "/var/lib/softatm/keys:ro" in " ".join(service["volumes"])
    assert compose["services"]["backup"]["user"] == "10001:10001"


def test_compose_trusts_only_nginx(compose: dict[str, Any]) -> None:
    services = compose["services"]
    address = services["nginx"]["networks"]["edge"]["ipv4_address"]
    assert services["app"]["environment"]["FORWARDED_ALLOW_IPS"] == address
    (subnet,) = compose["networks"]["edge"]["ipam"]["config"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet["subnet"])
    assert compose["networks"]["backend"]["internal"] is True
    assert "backend" not in services["nginx"]["networks"]
    assert "edge" not in services["db"]["networks"]
    # Only nginx is reachable from outside.
    assert [name for name, service in services.items() if "ports" in service] == ["nginx"]
    assert services["nginx"]["ports"] == ["80:80", "443:443"]


def test_compose_keeps_secrets_out(compose: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text()
    # Every secret location is a variable compose refuses to run without.
    variables = re.findall(r"\$\{([A-Z_]+)(:?[-?][^}]*)?\}", text)
    for name, rule in variables:
        if name in {"SECRETS_DIR", "BACKUP_DIR"}:
            assert rule.startswith(":?"), name
    secret_paths = [
        *compose["services"]["app"]["env_file"],
        compose["secrets"]["postgres_password"]["file"],
        *[volume for volume in compose["services"]["nginx"]["volumes"]],
    ]
    assert all(path.startswith("${SECRETS_DIR:?") for path in secret_paths), secret_paths
    # No password or key written in the file itself.
    db_environment = compose["services"]["db"]["environment"]
    assert "POSTGRES_PASSWORD" not in db_environment
    assert db_environment["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert not re.search(r"(?i)(password|secret_key)\s*[:=]\s*[\"']?\w{6,}", text)
    for service in compose["services"].values():
        for name in service.get("environment", {}):
            assert name not in {"SECRET_KEY", "DATABASE_URL"}, name


def test_compose_mounts_files_that_exist(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY_DIR / source).is_file(), source
    assert (PROJECT_ROOT / compose["services"]["scheduler"]["command"][1]).is_file()
    assert "/opt/softatm/deploy/backup.sh" in compose["services"]["backup"]["command"][0]


def test_every_setting_named_is_one_the_app_knows(compose: dict[str, Any]) -> None:
    for path in (DOCKERFILE, COMPOSE_FILE):
        assert unknown_settings(path.read_text()) == set(), path.name
    assert compose["services"]["app"]["environment"]["SOFTATM_TRUSTED_PROXY_HOPS"] == "1"
