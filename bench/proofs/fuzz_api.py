"""API fuzzing: schemathesis generates requests from /api/v1/openapi.json and checks the answers.

The app is built with `kiosk.create_app` over a scratch database migrated like production (SQLite
by default, `--database postgresql` for a scratch PostgreSQL database) and seeded by
`kiosk.api.testing.seed_for_fuzzing` (a post office, an agent with an open drawer, two verified
citizens with money, codes, and two credentials). It is served over real HTTP by Werkzeug on a
free local port, behind a small WSGI wrapper that counts every call and every 5xx answer.

The harness reads the document from the running app, then adds — to its own copy, never to the
app — request examples made of the seeded data (a real phone and PIN, a real code) and OpenAPI
links (a new code → verify it → redeem it or ask for approval; a cash-in → the statement), so the
positive examples and the stateful phase reach the operations' deep paths, not only their
validation. Then schemathesis runs every operation through its phases — examples, coverage
(boundary and negative values), fuzzing (positive and negative data) and stateful sequences —
with all of its checks. Each call carries the credential the operation wants (the agent's for
the counter's operations, the system's for reads, either for codes); a share of calls
(`--anonymous-share`) goes without any credential.

The claim: no answer is a server error (5xx, counted at the WSGI layer and by schemathesis's
`not_a_server_error`), and every answer — successes and problem details alike — conforms to the
document (status code, content type, headers and body schema). Schemathesis's other checks
(negative data accepted, positive data refused, authentication ignored, …) must pass too; their
failures are printed and counted in `fuzz_api_other_failures`. Business refusals of valid-looking
data (409, 410, 422 — a wrong PIN, a limit) are accepted answers to positive data.

Figures: `fuzz_api_operations`, `fuzz_api_calls`, `fuzz_api_accepted_calls` (2xx),
`fuzz_api_anonymous_calls`,
`fuzz_api_server_errors` (0), `fuzz_api_schema_violations` (0), `fuzz_api_other_failures` (0),
`fuzz_api_seconds`.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import random
import secrets
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import common
from bench.common import BenchmarkError, emit, log

CLAIM = (
    "Schemathesis, generating positive, negative and stateful requests for every operation of "
    "/api/v1 from its OpenAPI document (with and without credentials), gets no server error "
    "and no answer — success or problem details — that breaks the document."
)

DEFAULT_EXAMPLES = 50
DEFAULT_ANONYMOUS_SHARE = 0.1
DEFAULT_STATEFUL_STEPS = 6
API_PREFIX = "/api/v1"
DOCUMENT_PATH = API_PREFIX + "/openapi.json"
# The checks whose failure means an answer breaks the document.
SCHEMA_CHECKS = frozenset(
    {
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "allow_header_conformance",
    }
)
SERVER_ERROR_CHECKS = frozenset({"not_a_server_error"})
# Valid-looking data may still be refused by the rules; the document describes these answers.
POSITIVE_ACCEPTED_STATUSES = ["2xx", "401", "403", "404", "409", "410", "422", "429"]
FAILURES_SHOWN = 20
SERVER_START_TIMEOUT_S = 10.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proofs fuzz-api", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=DEFAULT_EXAMPLES,
        help=f"generated examples per operation and phase (default: {DEFAULT_EXAMPLES})",
    )
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="scratch SQLite file, or a scratch database on the PostgreSQL server "
        "(TEST_DATABASE_URL or 127.0.0.1:5432) (default: sqlite)",
    )
    parser.add_argument(
        "--anonymous-share",
        type=float,
        default=DEFAULT_ANONYMOUS_SHARE,
        help=f"share of calls sent without any credential (default: {DEFAULT_ANONYMOUS_SHARE:g})",
    )
    parser.add_argument(
        "--stateful-steps",
        type=int,
        default=DEFAULT_STATEFUL_STEPS,
        help=f"most calls in one stateful sequence (default: {DEFAULT_STATEFUL_STEPS})",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="schemathesis/hypothesis seed (default: random)"
    )
    return parser


# --- The app, served -------------------------------------------------------------------------


@dataclass(slots=True)
class CallCounter:
    """WSGI wrapper: counts the calls to /api/v1 and their statuses."""

    app: Any
    statuses: Counter[int] = field(default_factory=Counter)
    anonymous: int = 0
    server_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = str(environ.get("PATH_INFO", ""))
        counted = path.startswith(API_PREFIX)
        anonymous = "HTTP_AUTHORIZATION" not in environ
        what = f"{environ.get('REQUEST_METHOD')} {path}"

        def counting_start(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            code = int(status.split(" ", 1)[0])
            if counted:
                with self.lock:
                    self.statuses[code] += 1
                    self.anonymous += anonymous
                    if code >= 500:
                        self.server_errors.append(f"{what} -> {status}")
            return start_response(status, headers, exc_info)

        return self.app(environ, counting_start)

    @property
    def calls(self) -> int:
        return sum(self.statuses.values())


@contextlib.contextmanager
def _database(kind: str) -> Iterator[str]:
    if kind == "postgresql":
        with common.scratch_database(f"fuzzapi_{secrets.token_hex(3)}") as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="softatm-fuzz-api-") as directory:
        yield f"sqlite:///{Path(directory) / 'fuzz.sqlite3'}"


def _build_app(database_url: str, keys_dir: Path) -> tuple[Any, dict[str, Any]]:
    # Imported here: `--help` must not need the app's dependencies.
    import kiosk  # noqa: PLC0415
    from kiosk import database  # noqa: PLC0415
    from kiosk.api.testing import seed_for_fuzzing  # noqa: PLC0415

    log("migrating the scratch database")
    database.upgrade(database_url)
    app = kiosk.create_app(
        {
            "SOFTATM_ENV": "test",
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": secrets.token_urlsafe(48),
            "KEYS_DIR": keys_dir,
        }
    )
    with app.app_context(), database.database().sessions() as session:
        seeded = seed_for_fuzzing(session)
        session.commit()
    return app, seeded


@contextlib.contextmanager
def _served(wsgi: Any) -> Iterator[str]:
    """Serve over HTTP on a free local port, one request at a time, while the block runs."""
    from werkzeug.serving import make_server  # noqa: PLC0415

    # One line per request on stderr would bury the findings.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, wsgi, threaded=False)
    thread = threading.Thread(target=server.serve_forever, name="fuzz-api-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(SERVER_START_TIMEOUT_S)
        server.server_close()


# --- The document, with examples and links -----------------------------------------------------


def _operations(document: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for path_item in document["paths"].values():
        yield from path_item.values()


def _by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {operation["operationId"]: operation for operation in _operations(document)}


def enrich(document: dict[str, Any], seeded: dict[str, Any]) -> dict[str, Any]:
    """A copy of the document with examples of seeded data and links between operations."""
    enriched = copy.deepcopy(document)
    operations = _by_id(enriched)
    phone, other_phone = seeded["citizen_phones"]
    citizen, other_citizen = seeded["citizen_ids"]
    body_examples: dict[str, dict[str, Any]] = {
        "create_withdrawal_code": {
            "phone": phone,
            "pin": seeded["pin"],
            "amount_vnd": 200_000,
        },
        "create_payment_code": {
            "phone": other_phone,
            "pin": seeded["pin"],
            "amount_vnd": 80_000,
            "biller_id": seeded["biller_id"],
            "bill_reference": "PE0002",
        },
        "verify_code_presented": {"token": seeded["withdrawal_code_token"]},
        "cash_in": {"citizen_id": other_citizen, "amount_vnd": 300_000},
    }
    for operation_id, value in body_examples.items():
        media = operations[operation_id]["requestBody"]["content"]["application/json"]
        media["examples"] = {"seeded": {"value": value}}
    path_examples = {
        "wallet_balance": ("citizen_id", citizen),
        "wallet_statement": ("citizen_id", other_citizen),
        "commune_indicators": ("commune_code", seeded["commune_code"]),
    }
    for operation_id, (name, value) in path_examples.items():
        for parameter in operations[operation_id]["parameters"]:
            if parameter.get("name") == name:
                parameter["examples"] = {"seeded": {"value": value}}

    def link(source: str, status: str, name: str, target: str, **spec: Any) -> None:
        responses = operations[source]["responses"][status]
        responses.setdefault("links", {})[name] = {"operationId": target, **spec}

    for source in ("create_withdrawal_code", "create_payment_code"):
        link(
            source,
            "201",
            "VerifyTheNewCode",
            "verify_code_presented",
            requestBody={"token": "$response.body#/token"},
        )
        link(
            source,
            "201",
            "BalanceOfTheHolder",
            "wallet_balance",
            parameters={"path.citizen_id": "$response.body#/citizen_id"},
        )
    link(
        "verify_code_presented",
        "200",
        "RedeemTheVerifiedCode",
        "redeem_code",
        requestBody={
            "ticket": "$response.body#/ticket",
            "last4": seeded["citizen_last4"][0],
            "face_matched": True,
        },
    )
    link(
        "verify_code_presented",
        "200",
        "AskApprovalForTheVerifiedCode",
        "request_payout_approval",
        requestBody={"ticket": "$response.body#/ticket"},
    )
    link(
        "cash_in",
        "201",
        "StatementAfterCashIn",
        "wallet_statement",
        parameters={"path.citizen_id": "$response.body#/citizen_id"},
    )
    return enriched


# --- Credentials ------------------------------------------------------------------------------


def _who_by_operation() -> dict[str, str]:
    from kiosk.api.routing import OPERATIONS, blueprint  # noqa: PLC0415

    return {
        endpoint.removeprefix(blueprint.name + "."): spec.who
        for endpoint, spec in OPERATIONS.items()
    }


class Credentials:
    """Picks the credential each call carries; leaves a share of calls without one."""

    def __init__(self, seeded: dict[str, Any], anonymous_share: float, seed: int) -> None:
        self.system = seeded["system_token"]
        self.agent = seeded["agent_token"]
        self.who = _who_by_operation()
        self.anonymous_share = anonymous_share
        self.random = random.Random(seed)

    def token_for(self, operation_id: str | None) -> str | None:
        if self.random.random() < self.anonymous_share:
            return None
        who = self.who.get(operation_id or "", "public")
        if who == "agent":
            return str(self.agent)
        if who == "codes:create" and self.random.random() < 0.5:
            return str(self.agent)
        return str(self.system)


def _register_auth(schema: Any, credentials: Credentials) -> None:
    @schema.auth(refresh_interval=None)
    class _PerOperation:
        def get(self, case: Any, context: Any) -> str | None:
            return credentials.token_for(context.operation.definition.raw.get("operationId"))

        def set(self, case: Any, data: str | None, context: Any) -> None:
            if data is not None:
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


# --- The run ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Findings:
    operations: set[str] = field(default_factory=set)
    by_check: Counter[str] = field(default_factory=Counter)
    shown: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seen: set[tuple[str, str, str]] = field(default_factory=set)

    def note_failure(self, check: str, label: str, failure: Any) -> None:
        title = str(getattr(failure, "title", "")) if failure is not None else ""
        message = str(getattr(failure, "message", "")) if failure is not None else ""
        key = (check, label, title)
        if key in self.seen:
            return
        self.seen.add(key)
        self.by_check[check] += 1
        if len(self.shown) < FAILURES_SHOWN:
            self.shown.append(f"{check} on {label}: {title}\n    {message[:600]}")

    def count(self, checks: frozenset[str] | None, *, other: bool = False) -> int:
        if other:
            known = SCHEMA_CHECKS | SERVER_ERROR_CHECKS
            return sum(n for name, n in self.by_check.items() if name not in known)
        assert checks is not None
        return sum(n for name, n in self.by_check.items() if name in checks)


def _config(args: argparse.Namespace, base_url: str) -> Any:
    import schemathesis  # noqa: PLC0415

    raw: dict[str, Any] = {
        "base-url": base_url,
        "workers": 1,
        "generation": {
            "mode": "all",
            "max-examples": args.examples,
            "database": "none",
        },
        "checks": {
            "enabled": True,
            "positive_data_acceptance": {"expected-statuses": POSITIVE_ACCEPTED_STATUSES},
        },
        "phases": {
            "stateful": {"max-steps": args.stateful_steps},
        },
    }
    if args.seed is not None:
        raw["seed"] = args.seed
    return schemathesis.Config.from_dict(raw)


def _execute(schema: Any, findings: Findings) -> None:
    from schemathesis.engine import events, from_schema  # noqa: PLC0415

    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            label = event.recorder.label
            if label.startswith(("GET ", "POST ", "PUT ", "PATCH ", "DELETE ")):
                findings.operations.add(label)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status.value == "failure":
                        failure = check.failure_info.failure if check.failure_info else None
                        findings.note_failure(check.name, label, failure)
        elif isinstance(event, events.NonFatalError):
            findings.errors.append(f"{event.label}: {type(event.value).__name__}: {event.value}")
        elif isinstance(event, events.FatalError):
            raise BenchmarkError(f"schemathesis stopped: {event.exception!r}")
        elif isinstance(event, events.PhaseFinished):
            log(f"phase {event.phase.name.value}: {event.status.value}")
        elif isinstance(event, events.EngineFinished):
            log(f"schemathesis finished: {event.stop_reason.value}")


def run(args: argparse.Namespace) -> dict[str, int]:
    import schemathesis  # noqa: PLC0415

    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    args.seed = seed
    findings = Findings()
    with (
        _database(args.database) as database_url,
        tempfile.TemporaryDirectory(prefix="softatm-fuzz-keys-") as keys,
    ):
        app, seeded = _build_app(database_url, Path(keys))
        counter = CallCounter(app.wsgi_app)
        app.wsgi_app = counter
        try:
            with _served(app) as base_url:
                with urllib.request.urlopen(base_url + DOCUMENT_PATH) as answer:  # noqa: S310
                    document = json.load(answer)
                counter.statuses.clear()
                schema = schemathesis.openapi.from_dict(
                    enrich(document, seeded), config=_config(args, base_url)
                )
                _register_auth(schema, Credentials(seeded, args.anonymous_share, seed))
                log(f"fuzzing {base_url}{API_PREFIX} (seed {seed}, {args.database})")
                began = time.monotonic()
                _execute(schema, findings)
                seconds = time.monotonic() - began
        finally:
            from kiosk import database  # noqa: PLC0415

            database.dispose(app)
    server_errors = max(len(counter.server_errors), findings.count(SERVER_ERROR_CHECKS))
    for line in counter.server_errors[:FAILURES_SHOWN]:
        log(f"server error: {line}")
    for line in findings.shown:
        log(f"check failed: {line}")
    for line in findings.errors[:FAILURES_SHOWN]:
        log(f"schemathesis error: {line}")
    log(f"statuses: {dict(sorted(counter.statuses.items()))}")
    return {
        "operations": len(findings.operations),
        "calls": counter.calls,
        "anonymous_calls": counter.anonymous,
        "accepted_calls": sum(n for status, n in counter.statuses.items() if status < 300),
        "server_errors": server_errors,
        "schema_violations": findings.count(SCHEMA_CHECKS),
        "other_failures": findings.count(None, other=True),
        "engine_errors": len(findings.errors),
        "seconds": round(seconds),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        figures = run(args)
    except BenchmarkError as error:
        log(f"fuzz-api: {error}")
        return 1
    emit("fuzz_api_operations", figures["operations"], "operations")
    emit("fuzz_api_calls", figures["calls"], "calls", seed=args.seed, database=args.database)
    emit("fuzz_api_accepted_calls", figures["accepted_calls"], "calls")
    emit("fuzz_api_anonymous_calls", figures["anonymous_calls"], "calls")
    emit("fuzz_api_server_errors", figures["server_errors"], "answers")
    emit("fuzz_api_schema_violations", figures["schema_violations"], "failures")
    emit("fuzz_api_other_failures", figures["other_failures"], "failures")
    emit("fuzz_api_seconds", figures["seconds"], "s")
    failed = (
        figures["server_errors"]
        or figures["schema_violations"]
        or figures["other_failures"]
        or figures["engine_errors"]
        or figures["calls"] == 0
    )
    return 1 if failed else 0
