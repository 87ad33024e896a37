"""The OpenAPI 3.1 document of /api/v1, generated from the code.

Choice of tool: pydantic 2 models plus this small assembly. pydantic (well kept, typed) already
validates the bodies, and its JSON Schema is draft 2020-12 — the dialect of OpenAPI 3.1 — so the
schemas go into the document as they are. The paths come from the app's own URL map and the
metadata each `kiosk.api.routing.operation` declares, so a route cannot exist without its
entry. apispec or spectree would add a second description layer (marshmallow, or their own
decorators) for what these few lines do; flask-openapi3 would replace Flask's routing.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from kiosk.api import schemas
from kiosk.api.models import IDEMPOTENCY_KEY_LENGTH_MAX_CHARS
from kiosk.api.problems import ERROR_STATUSES, PROBLEM_MEDIA_TYPE, PROBLEMS
from kiosk.api.routing import IDEMPOTENCY_HEADER, OperationSpec, blueprint

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
REF_TEMPLATE = "#/components/schemas/{model}"
_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "int": {"type": "integer", "minimum": 0, "maximum": 2**53},
    "uuid": {"type": "string", "format": "uuid"},
    "default": {"type": "string", "minLength": 1, "maxLength": 100},
}
STATUS_TEXTS = {
    200: "OK",
    201: "Created",
    400: "Bad request: malformed JSON, or the Idempotency-Key header missing or invalid",
    401: "No credential, a wrong one, or a revoked one",
    403: "The credential may not do this, or not in this place",
    404: "Unknown path or object, or an object outside the credential's reach",
    405: "Method not allowed on this path",
    409: "The same Idempotency-Key is still being processed, or the code is already paid",
    410: "The scan ticket has expired: scan the code again",
    413: "Body too large",
    415: "The body must be application/json",
    422: "Invalid body, an Idempotency-Key reused with another body, or a refusal by the rules",
    429: "Too many failed attempts: retry after the Retry-After header's seconds",
    500: "Unexpected server error",
}


def _openapi_path(rule: str) -> str:
    return _CONVERTER.sub(lambda match: "{" + match.group(2) + "}", rule)


def _path_parameters(rule: str) -> list[dict[str, Any]]:
    return [
        {
            "name": match.group(2),
            "in": "path",
            "required": True,
            "schema": _PATH_SCHEMAS.get(match.group(1) or "default", _PATH_SCHEMAS["default"]),
        }
        for match in _CONVERTER.finditer(rule)
    ]


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": field}
        for name, field in schema.get("properties", {}).items()
    ]


def _schemas(operations: list[OperationSpec]) -> tuple[dict[Any, Any], dict[str, Any]]:
    models: list[tuple[type[BaseModel], Any]] = [(schemas.ProblemDetails, "serialization")]
    for spec in operations:
        models.append((spec.response, "serialization"))
        if spec.body is not None:
            models.append((spec.body, "validation"))
    unique = list(dict.fromkeys(models))
    refs, definitions = models_json_schema(unique, ref_template=REF_TEMPLATE)
    return refs, definitions.get("$defs", {})


def _operation(spec: OperationSpec, refs: dict[Any, Any]) -> dict[str, Any]:
    parameters = _path_parameters(spec.rule)
    if spec.query is not None:
        parameters += _query_parameters(spec.query)
    if spec.idempotent:
        parameters.append({"$ref": "#/components/parameters/IdempotencyKey"})
    responses: dict[str, Any] = {
        str(spec.status): {
            "description": STATUS_TEXTS.get(spec.status, "Success"),
            "content": {"application/json": {"schema": refs[(spec.response, "serialization")]}},
        }
    }
    statuses = (404, 405, 500) if spec.who == "public" else ERROR_STATUSES
    for status in statuses:
        responses[str(status)] = {"$ref": f"#/components/responses/Problem{status}"}
    description = spec.description
    if spec.who == "agent":
        description += "\n\nCredential: an agent's."
    elif spec.who != "public":
        description += f"\n\nCredential: a system's with scope `{spec.who}`"
        description += ", or an agent's." if spec.who == "codes:create" else "."
    if spec.idempotent:
        description += (
            "\n\nMoves money: the `Idempotency-Key` header is required. The same key and body"
            " replay the stored answer (header `Idempotent-Replayed: true`); the same key with"
            " another body is refused (422); while the first request runs, 409."
        )
    found: dict[str, Any] = {
        "operationId": spec.endpoint.removeprefix(blueprint.name + "."),
        "summary": spec.summary,
        "description": description.strip(),
        "tags": list(spec.tags),
        "parameters": parameters,
        "responses": responses,
        "security": [] if spec.who == "public" else [{"bearerAuth": []}, {"basicAuth": []}],
    }
    if spec.body is not None:
        found["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(spec.body, "validation")]}},
        }
    return found


def document(app: Flask, operations: dict[str, OperationSpec]) -> dict[str, Any]:
    """The document for the API routes of ``app`` (each must have been declared)."""
    specs = [
        operations[rule.endpoint]
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(blueprint.name + ".")
    ]
    refs, definitions = _schemas(specs)
    paths: dict[str, dict[str, Any]] = {}
    for spec in sorted(specs, key=lambda spec: (spec.rule, spec.method)):
        paths.setdefault(_openapi_path(spec.rule), {})[spec.method.lower()] = _operation(spec, refs)
    problem_ref = refs[(schemas.ProblemDetails, "serialization")]
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Soft ATM integration API",
            "version": API_VERSION,
            "description": (
                "For integrators: a bank's core system, the post's counter software, handheld "
                "scanners. Errors are RFC 9457 problem details with a stable `code`; their "
                "`type` is https://softatm.vn/problems/<code>. Known codes: "
                + ", ".join(sorted(PROBLEMS))
                + "."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": definitions,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "<credential id>.<secret>",
                },
                "basicAuth": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The credential id as user name, the secret as password.",
                },
            },
            "parameters": {
                "IdempotencyKey": {
                    "name": IDEMPOTENCY_HEADER,
                    "in": "header",
                    "required": True,
                    "description": "A new key (a UUID) per operation; reuse it only to retry.",
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": IDEMPOTENCY_KEY_LENGTH_MAX_CHARS,
                        "pattern": "^[!-~]+$",
                    },
                }
            },
            "responses": {
                f"Problem{status}": {
                    "description": STATUS_TEXTS[status],
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}},
                }
                for status in ERROR_STATUSES
            },
        },
    }
