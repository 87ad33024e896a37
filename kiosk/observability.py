"""What the app tells its operators: a request id on every request, one JSON log line per
request, logs with personal data redacted, the request metrics, and the reverse proxy's
forwarded client address.

`init_app` wires the per-request part into an app; `configure_logging` sends the process's logs
to stderr as JSON lines, and is for the processes that serve real traffic (`kiosk.wsgi`): tests
and the development server keep Python's usual logging.

Logs never carry personal data. Requests log no query string, no form and no name, only who was
signed in by kind and number; and `RedactPersonalData` removes citizen ID numbers, phone
numbers, PINs and one-time codes, and code tokens from every message, extra field and traceback
that still mentions one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Mapping
from typing import IO, Any

from flask import Flask, Response, g, has_app_context, request
from sqlalchemy import inspect as inspect_model
from sqlalchemy.exc import NoInspectionAvailable
from werkzeug.middleware.proxy_fix import ProxyFix

from kiosk import metrics

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_LENGTH_MAX_CHARS = 64
_REQUEST_ID = re.compile(rf"[A-Za-z0-9-]{{1,{REQUEST_ID_LENGTH_MAX_CHARS}}}")
# Outside the "kiosk" logger that Flask gives a plain-text handler in debug mode; the
# development server prints its own request lines.
REQUEST_LOGGER = "softatm.requests"
# Probes poll these every few seconds; their lines would drown the rest at INFO.
QUIET_ENDPOINTS = frozenset({"kiosk.healthz", "kiosk.readyz", "metrics.metrics"})
# Who may be signed in, as the `flask.g` field the areas' access modules set.
PRINCIPAL_FIELDS = ("citizen", "agent", "official")

logger = logging.getLogger(REQUEST_LOGGER)


# --- Per request --------------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    """Wire request ids, request logging and metrics, the /metrics page and the proxy setting.

    Call it before any other extension: its before-request hook then runs first, so every
    other hook's log lines carry the request id, and its after-request hook runs last, after
    `kiosk.database` has committed, so the log line and the counts see the final status.
    """
    hops: int = app.config.get("TRUSTED_PROXY_HOPS", 0)
    if hops:
        # X-Forwarded-For and -Proto from exactly that many proxies; the host and prefix are
        # the app's own, whatever a client claims.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_prefix=0
        )
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.register_blueprint(metrics.blueprint)


def request_id_from(raw: str | None) -> str:
    """The client's request id if it is a short token of letters, digits and hyphens (so that a
    proxy's id follows the request through), else a new one."""
    if raw and _REQUEST_ID.fullmatch(raw):
        return raw
    # 32 hex digits, the form of nginx's $request_id.
    return secrets.token_hex(16)


def current_request_id() -> str | None:
    if not has_app_context():
        return None
    request_id: str | None = g.get("request_id")
    return request_id


def _start_request() -> None:
    g.request_started = time.perf_counter()
    g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))


def _finish_request(response: Response) -> Response:
    duration_s = time.perf_counter() - g.get("request_started", time.perf_counter())
    request_id = g.get("request_id") or request_id_from(None)
    response.headers[REQUEST_ID_HEADER] = request_id
    metrics.apply_committed(response.status_code)
    metrics.request_answered(request.endpoint, request.method, response.status_code, duration_s)
    principal_kind, principal_id = _principal()
    level = logging.DEBUG if request.endpoint in QUIET_ENDPOINTS else logging.INFO
    logger.log(
        level,
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "request_id": request_id,
            "method": request.method,
            "endpoint": request.endpoint,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(duration_s * 1000, 1),
            "principal_kind": principal_kind,
            "principal_id": principal_id,
        },
    )
    return response


def _principal() -> tuple[str | None, int | None]:
    """Who was signed in, as a kind and a row id (never a name or a phone number)."""
    for field in PRINCIPAL_FIELDS:
        found = g.get(field)
        if found is None:
            continue
        # The identity the session knows; reading the `id` attribute could try to reload a row
        # that the request's rollback expired, after its session has closed.
        try:
            identity = inspect_model(found).identity
        except NoInspectionAvailable:
            identity = None
        return field, None if not identity else identity[0]
    return None, None


# --- Redaction ----------------------------------------------------------------------------------

REDACTED = "[redacted]"
# Form fields and log fields whose whole value is secret, whatever it looks like.
SECRET_KEYS = frozenset(
    {
        "authorization",
        "cookie",
        "current_password",
        "password",
        "password_again",
        "secret",
        "token",
    }
)
# Fields that hold a PIN, a one-time code or a counter fallback code: their digits go.
DIGIT_CODE_KEYS = frozenset(
    {
        "code",
        "current_pin",
        "ma_so",
        "ma_xac_thuc",
        "new_pin",
        "otp",
        "pin",
        "pin_again",
        "totp",
    }
)
_KEY_VALUE_SEPARATOR = r"""["']?\s*[:=,]\s*["']?"""
_SECRET_VALUE = re.compile(
    rf"(?i)(?<![A-Za-z0-9_])({'|'.join(sorted(SECRET_KEYS))}){_KEY_VALUE_SEPARATOR}"
    r"""[^\s"'&,;)\]}]+"""
)
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+")
_DIGIT_CODE = re.compile(
    rf"(?i)(?<![A-Za-z0-9_])({'|'.join(sorted(DIGIT_CODE_KEYS))})({_KEY_VALUE_SEPARATOR})"
    r"\d{4,8}(?!\d)"
)
# A code token: a run of Base45 text (RFC 9285) of 100 characters or more (a signed code has
# at least 162).
_BASE45_TOKEN = re.compile(r"[0-9A-Z $%*+\-./:]{100,}")
# A 12-digit citizen ID number (căn cước), possibly written in groups.
_CITIZEN_ID = re.compile(r"(?<![0-9A-Za-z.-])\d(?: ?\d){11}(?![0-9A-Za-z])")
# A Vietnamese phone number, possibly grouped: 0 (or +84, 84) then 9 digits for a mobile, 10 for
# a landline (area codes start with 2). A letter, digit, dot or hyphen just before it means part
# of something else (a UUID, a decimal).
_PHONE = re.compile(
    r"(?<![0-9A-Za-z.+-])(?:\(?\+?84\)?[ .-]?|0)(?:2(?:[ .-]?\d){9}|[1-9](?:[ .-]?\d){8})"
    r"(?![0-9A-Za-z])"
)


def redact(text: str) -> str:
    """``text`` with code tokens, secrets, citizen ID numbers and phone numbers replaced."""
    text = _BASE45_TOKEN.sub(_code_token, text)
    # The bearer token first: "Authorization: Bearer x" would otherwise lose only "Bearer".
    text = _BEARER.sub(f"Bearer {REDACTED}", text)
    text = _SECRET_VALUE.sub(lambda match: f"{match.group(1)}={REDACTED}", text)
    text = _DIGIT_CODE.sub(lambda match: f"{match.group(1)}{match.group(2)}{REDACTED}", text)
    text = _CITIZEN_ID.sub("[citizen-id]", text)
    return _PHONE.sub("[phone]", text)


def _code_token(match: re.Match[str]) -> str:
    # Base45 includes the space: the spaces around a token stay, to keep the words apart.
    found = match.group()
    stripped = found.strip(" ")
    start = found.index(stripped) if stripped else 0
    return f"{found[:start]}[code-token]{found[start + len(stripped) :]}"


def redact_value(key: str, value: Any) -> Any:
    """A log field's value with personal data removed; ``key`` is the field's name."""
    name = key.lower()
    if name in SECRET_KEYS and value is not None:
        return REDACTED
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int | str):
        text = str(value)
        if name in DIGIT_CODE_KEYS and text.isdigit():
            return REDACTED
        redacted = redact(text)
        return value if redacted == text else redacted
    if isinstance(value, Mapping):
        return {str(k): redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(key, item) for item in value]
    return redact(str(value))


# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_FIELDS = frozenset(
    {
        *logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__,
        "message",
        "asctime",
        "request_id",
    }
)


class RedactPersonalData(logging.Filter):
    """Rewrites each record before any formatter sees it: the message with its arguments
    merged, every ``extra`` field, and the traceback text. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        try:
            record.msg = redact(record.getMessage())
            record.args = None
            for key, value in list(record.__dict__.items()):
                if key not in _RECORD_FIELDS or key == "request_id":
                    record.__dict__[key] = redact_value(key, value)
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
            if record.stack_info:
                record.stack_info = redact(record.stack_info)
        except Exception:  # a log call must never break the request that made it
            record.msg = "log record could not be redacted; its content is withheld"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            for key in [key for key in record.__dict__ if key not in _RECORD_FIELDS]:
                del record.__dict__[key]
        return True


# --- JSON lines ---------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, request_id, then the
    record's ``extra`` fields and any exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def json_handler(stream: IO[str]) -> logging.Handler:
    """A handler writing redacted JSON lines to ``stream``."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactPersonalData())
    handler.setFormatter(JsonFormatter())
    return handler


_HANDLER_MARK = "softatm_json"


def configure_logging(level: int = logging.INFO) -> None:
    """Send every record that reaches the root logger to stderr as a redacted JSON line.

    Idempotent. Call it before the app is created, so that Flask finds a handler and adds no
    plain-text one of its own. Gunicorn's own loggers do not reach the root logger; its access
    log is configured in ``deploy/gunicorn.conf.py``.
    """
    root = logging.getLogger()
    if any(getattr(handler, _HANDLER_MARK, False) for handler in root.handlers):
        return
    handler = json_handler(sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level)
