"""How an /api/v1 operation is declared once and served: authentication, the JSON body and
query checked against pydantic models, the Idempotency-Key of money-moving POSTs, and the
metadata from which `kiosk.api.openapi` writes the document.

A view declared with `operation` receives the `Caller` and the parsed models, and returns a
response model; whatever it raises as a `Problem` leaves as problem details.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from flask_babel import gettext as _  # type: ignore[import-untyped]
from pydantic import BaseModel, ValidationError

from kiosk.api import credentials, idempotency
from kiosk.api.credentials import AuthFailure, Caller
from kiosk.api.problems import Problem
from kiosk.database import get_session
from kiosk.extensions import csrf

BODY_SIZE_MAX_BYTES = 16 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
# CSRF protects cookie sessions from requests another site makes the browser send. The API
# reads no cookie at all: every request carries its credential in the Authorization header,
# which a browser never adds on its own to a cross-site request, so there is nothing to forge.
csrf.exempt(blueprint)


@dataclass(frozen=True)
class OperationSpec:
    endpoint: str
    method: str
    rule: str
    summary: str
    description: str
    response: type[BaseModel]
    status: int
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    idempotent: bool
    # "public", "agent", or a system scope (agents may hold it too, see `who`).
    who: str
    tags: tuple[str, ...] = ()
    # Fields of the answer never stored (a code's token); `refill` makes them again on replay.
    secret_fields: frozenset[str] = field(default_factory=frozenset)
    refill: Callable[[dict[str, Any]], dict[str, Any]] | None = None


OPERATIONS: dict[str, OperationSpec] = {}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _json(model: BaseModel, status: int, headers: dict[str, str] | None = None) -> Response:
    return _json_body(model.model_dump(mode="json"), status, headers)


def _json_body(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    response = Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json"
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _validation_problem(error: ValidationError) -> Problem:
    return Problem(
        "validation-failed",
        _("Dữ liệu gửi lên không hợp lệ; xem danh sách lỗi."),
        errors=[
            {
                "field": ".".join(str(part) for part in item["loc"]) or "body",
                "message": item["msg"],
            }
            for item in error.errors(include_url=False, include_context=False, include_input=False)
        ][:20],
    )


def _read_body(model: type[BaseModel]) -> tuple[BaseModel, Any]:
    if request.mimetype != "application/json":
        raise Problem(
            "unsupported-media-type", _("Gửi nội dung JSON (Content-Type: application/json).")
        )
    if (request.content_length or 0) > BODY_SIZE_MAX_BYTES:
        raise Problem("body-too-large")
    raw = request.get_data(cache=True)
    if len(raw) > BODY_SIZE_MAX_BYTES:
        raise Problem("body-too-large")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Problem("malformed-json") from None
    try:
        # Strict: JSON has its own booleans and integers, and the document promises them; lax
        # validation would take "yes" or 1 for a boolean and "500" for an amount.
        return model.model_validate(data, strict=True), data
    except ValidationError as error:
        raise _validation_problem(error) from None


def _read_query(model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(request.args.to_dict(flat=True))
    except ValidationError as error:
        raise _validation_problem(error) from None


def authenticated() -> Caller:
    """The caller of this request (`Problem` 401/429 otherwise)."""
    try:
        return credentials.authenticate(
            get_session(), request.headers.get("Authorization"), request.remote_addr or "", now()
        )
    except AuthFailure as failure:
        headers = {"WWW-Authenticate": 'Bearer realm="softatm-api"'}
        if failure.until is not None:
            retry_s = max(1, int((failure.until - now()).total_seconds()))
            headers = {"Retry-After": str(retry_s)}
        raise Problem(failure.code, headers=headers) from None


# What an agent's credential may do besides the counter's own operations ("agent").
AGENT_SCOPES = frozenset({credentials.Scope.CODES_CREATE.value})


def _check_who(caller: Caller, who: str) -> None:
    if who == "agent":
        allowed = caller.agent is not None
    elif caller.agent is not None:
        allowed = who in AGENT_SCOPES
    else:
        allowed = who in caller.scopes
    if not allowed:
        raise Problem(
            "scope-missing",
            _("Thông tin xác thực này không được dùng cho thao tác này (%(who)s).", who=who),
            required=who,
        )


def current_caller() -> Caller:
    caller: Caller = g.api_caller
    return caller


def idempotency_key() -> str:
    key: str = g.api_idempotency_key
    return key


def _stored(spec: OperationSpec, body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name not in spec.secret_fields}


def _run_idempotent(spec: OperationSpec, raw: Any, run: Callable[[], BaseModel]) -> Response:
    raw_key = request.headers.get(IDEMPOTENCY_HEADER)
    if raw_key is None:
        raise Problem(
            "idempotency-key-missing",
            _("Mỗi yêu cầu chuyển tiền cần tiêu đề Idempotency-Key (ví dụ một UUID mới)."),
        )
    try:
        key = idempotency.check_key(raw_key)
    except idempotency.KeyInvalid:
        raise Problem(
            "idempotency-key-invalid", _("Idempotency-Key gồm 1 đến 255 ký tự ASCII in được.")
        ) from None
    caller = current_caller()
    session = get_session()
    started = now()
    print_ = idempotency.fingerprint(
        current_app.config["SECRET_KEY"],
        method=request.method,
        path=request.path,
        credential_id=caller.credential.id,
        body=raw,
    )
    try:
        claimed = idempotency.claim(session, caller.credential.id, key, print_, started)
    except idempotency.KeyReused:
        raise Problem(
            "idempotency-key-reused",
            _("Idempotency-Key này đã dùng cho một yêu cầu khác; hãy dùng khoá mới."),
        ) from None
    except idempotency.InProgress:
        raise Problem(
            "idempotency-in-progress",
            _("Yêu cầu với khoá này đang được xử lý; thử lại sau giây lát."),
            headers={"Retry-After": "1"},
        ) from None
    if isinstance(claimed, idempotency.Replay):
        body = claimed.body
        if claimed.status < 400 and spec.refill is not None:
            body = spec.refill(body)
        media = "application/json" if claimed.status < 400 else "application/problem+json"
        response = _json_body(body, claimed.status, {REPLAYED_HEADER: "true"})
        response.mimetype = media
        return response
    g.api_idempotency_key = key
    try:
        model = run()
    except Problem as problem:
        if problem.status == 429:
            idempotency.release(session, claimed.record_id)
        else:
            idempotency.complete_apart(
                session, claimed.record_id, problem.status, problem.body(), now()
            )
        raise
    except BaseException:
        idempotency.release(session, claimed.record_id)
        raise
    body = model.model_dump(mode="json")
    idempotency.complete(session, claimed.record_id, spec.status, _stored(spec, body), now())
    return _json_body(body, spec.status)


def operation(
    method: str,
    rule: str,
    *,
    summary: str,
    response: type[BaseModel],
    who: str,
    status: int = 200,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    idempotent: bool = False,
    tags: tuple[str, ...] = (),
    secret_fields: frozenset[str] = frozenset(),
    refill: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Callable[[Callable[..., BaseModel]], Callable[..., Response]]:
    """Declare and register an operation (see the module's note)."""

    def decorator(view: Callable[..., BaseModel]) -> Callable[..., Response]:
        spec = OperationSpec(
            endpoint=f"{blueprint.name}.{view.__name__}",
            method=method,
            rule=blueprint.url_prefix + rule if blueprint.url_prefix else rule,
            summary=summary,
            description=(view.__doc__ or "").strip(),
            response=response,
            status=status,
            body=body,
            query=query,
            idempotent=idempotent,
            who=who,
            tags=tags,
            secret_fields=secret_fields,
            refill=refill,
        )
        OPERATIONS[spec.endpoint] = spec

        @functools.wraps(view)
        def serve(**path: Any) -> Response:
            if who != "public":
                g.api_caller = authenticated()
                _check_who(g.api_caller, who)
            arguments: dict[str, Any] = dict(path)
            raw: Any = None
            if body is not None:
                arguments["body"], raw = _read_body(body)
            if query is not None:
                arguments["query"] = _read_query(query)
            if idempotent:
                return _run_idempotent(spec, raw, lambda: view(**arguments))
            return _json(view(**arguments), status)

        blueprint.add_url_rule(rule, endpoint=view.__name__, view_func=serve, methods=[method])
        return serve

    return decorator
