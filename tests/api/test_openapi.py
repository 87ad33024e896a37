"""The OpenAPI document is generated from the code, valid OpenAPI 3.1, and complete."""

from __future__ import annotations

import re

from flask import Flask
from openapi_spec_validator import validate

from kiosk.api.problems import ERROR_STATUSES


def _document(app: Flask) -> dict:
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document: dict = response.get_json()
    return document


def test_the_document_is_valid_openapi_3_1(plain_app: Flask) -> None:
    document = _document(plain_app)
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_api_route_of_the_url_map_is_in_the_document(plain_app: Flask) -> None:
    paths = _document(plain_app)["paths"]
    routes = [rule for rule in plain_app.url_map.iter_rules() if rule.rule.startswith("/api/v1")]
    assert routes
    for rule in routes:
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in paths, path
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in paths[path], (method, path)


def test_every_error_response_is_described_as_problem_details(plain_app: Flask) -> None:
    document = _document(plain_app)
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if operation["security"] == []:
                continue
            for status in ERROR_STATUSES:
                assert str(status) in operation["responses"], (method, path, status)
    problem = document["components"]["responses"]["Problem422"]["content"]
    assert "application/problem+json" in problem


def test_money_moving_posts_require_the_idempotency_key(plain_app: Flask) -> None:
    paths = _document(plain_app)["paths"]
    for path in ("/api/v1/redemptions", "/api/v1/cash-ins", "/api/v1/withdrawal-codes"):
        parameters = paths[path]["post"]["parameters"]
        assert {"$ref": "#/components/parameters/IdempotencyKey"} in parameters
