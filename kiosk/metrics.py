"""Prometheus metrics: what is counted, the small functions the domain calls to count it, and
the ``/metrics`` page a scraper reads.

Counts of committed work (codes issued, redeemed or expired, ledger transfers, drawer variances)
wait for the request's commit: inside a request they are kept on `flask.g` and applied by
`kiosk.observability` after the response is known to be a success, the same rule by which
`kiosk.database` commits, so a request that rolls back counts nothing. Outside a request (a
command) they count at once. Refusals and failed sign-ins count at once: they are what happened,
whatever the request's outcome.

Every label takes its values from a fixed set in the code (an endpoint, a ledger code, a refusal
reason), never from what a client sent, so the number of series stays bounded.

Gunicorn runs several worker processes, each with its own counters. When
``PROMETHEUS_MULTIPROC_DIR`` is set (before the process starts), prometheus_client keeps the
values in files in that directory and ``/metrics`` adds up every process's files. The directory
must be emptied when the server starts, and gunicorn's ``child_exit`` hook should call
``prometheus_client.multiprocess.mark_process_dead(worker.pid)``; see ``deploy/``.
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from flask import Blueprint, Response, abort, current_app, g, has_request_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from ledger import TransferResult

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Shown pages take from a few milliseconds (a redirect) to a second or more (a QR code photo
# decoded on a slow counter computer); past five seconds the exact figure no longer matters.
REQUEST_DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Any other method a client invents is counted as "other", so it cannot add series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ENDPOINT = "unmatched"
# The ledger code of a reservation voided because its time ran out (`ledger.sweeper`).
EXPIRY_TRANSFER_CODE = "expired"
_PENDING_FIELD = "softatm_metrics_pending"


class LoginFailure(enum.StrEnum):
    """What was wrong in a refused sign-in or check of a secret."""

    CITIZEN_PIN = "citizen_pin"
    AGENT_PASSWORD = "agent_password"  # noqa: S105 - a label value, not a password
    OFFICIAL_PASSWORD = "official_password"  # noqa: S105 - a label value, not a password
    TOTP = "totp"


HTTP_REQUESTS = Counter(
    "softatm_http_requests",
    "HTTP requests answered, by endpoint, method and status.",
    ("endpoint", "method", "status"),
)
HTTP_REQUEST_DURATION = Histogram(
    "softatm_http_request_duration_seconds",
    "Time from the start of a request's handling to its response, by endpoint.",
    ("endpoint",),
    buckets=REQUEST_DURATION_BUCKETS_S,
)
CODES_ISSUED = Counter(
    "softatm_codes_issued", "Withdrawal and payment codes made, by kind.", ("kind",)
)
CODES_REDEEMED = Counter(
    "softatm_codes_redeemed", "Codes paid out or collected at a counter, by kind.", ("kind",)
)
CODES_EXPIRED = Counter("softatm_codes_expired", "Codes marked expired and their money released.")
CODES_REFUSED = Counter(
    "softatm_codes_refused", "Codes presented at a counter and refused, by reason.", ("reason",)
)
LEDGER_TRANSFERS = Counter(
    "softatm_ledger_transfers",
    "Ledger transfers posted by the web app, by ledger code (replays of an idempotency key "
    "are not counted).",
    ("code",),
)
DRAWER_VARIANCES = Counter(
    "softatm_drawer_variances",
    "Drawer counts that differed from the expected cash and were posted, by stage.",
    ("stage",),
)
DRAWER_VARIANCE_VND = Counter(
    "softatm_drawer_variance_vnd",
    "Sum of the absolute drawer variances posted, in đồng.",
)
LOGIN_FAILURES = Counter(
    "softatm_login_failures",
    "Wrong secrets typed: citizen PINs, agent passwords, TOTP codes.",
    ("kind",),
)
# Series that exist from the start read 0 rather than missing, so a rate() over them works.
for _kind in LoginFailure:
    LOGIN_FAILURES.labels(kind=_kind.value)


# --- Counting -------------------------------------------------------------------------------------


def _when_committed(count: Callable[[], None]) -> None:
    if has_request_context():
        g.setdefault(_PENDING_FIELD, []).append(count)
    else:
        count()


def apply_committed(status_code: int) -> None:
    """Apply the counts kept during this request if its work was committed (called once, by
    `kiosk.observability`, after `kiosk.database` has committed or rolled back)."""
    pending: list[Callable[[], None]] = g.pop(_PENDING_FIELD, [])
    # The same rule as kiosk.database: a response below 400 commits, anything else rolls back.
    if status_code < 400:
        for count in pending:
            count()


def request_answered(endpoint: str | None, method: str, status: int, duration_s: float) -> None:
    endpoint = endpoint or UNMATCHED_ENDPOINT
    method = method if method in KNOWN_METHODS else "other"
    HTTP_REQUESTS.labels(endpoint=endpoint, method=method, status=str(status)).inc()
    HTTP_REQUEST_DURATION.labels(endpoint=endpoint).observe(duration_s)


def code_issued(kind: str) -> None:
    _when_committed(lambda: CODES_ISSUED.labels(kind=kind).inc())


def code_redeemed(kind: str) -> None:
    _when_committed(lambda: CODES_REDEEMED.labels(kind=kind).inc())


def code_expired(count: int = 1) -> None:
    if count > 0:
        _when_committed(lambda: CODES_EXPIRED.inc(count))


def code_refused(reason: str) -> None:
    CODES_REFUSED.labels(reason=reason).inc()


def transfers_posted(results: Iterable[TransferResult]) -> None:
    """Count what `ledger.post_transfer(s)` returned; a replayed key posted nothing new."""
    codes = [result.code for result in results if not result.replayed]

    def count() -> None:
        for code in codes:
            LEDGER_TRANSFERS.labels(code=code).inc()

    if codes:
        _when_committed(count)


def expired_reservations_voided(count: int) -> None:
    """Count what `ledger.void_expired_reservations` returned (it returns no transfers)."""
    if count > 0:
        _when_committed(lambda: LEDGER_TRANSFERS.labels(code=EXPIRY_TRANSFER_CODE).inc(count))


def drawer_variance(stage: str, variance_vnd: int) -> None:
    """A drawer variance posted at ``stage`` ("opening" or "closing"); its sign is ignored."""
    if variance_vnd == 0:
        return

    def count() -> None:
        DRAWER_VARIANCES.labels(stage=stage).inc()
        DRAWER_VARIANCE_VND.inc(abs(variance_vnd))

    _when_committed(count)


def login_failed(kind: LoginFailure) -> None:
    LOGIN_FAILURES.labels(kind=kind.value).inc()


# --- The page a scraper reads -------------------------------------------------------------------

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    """The metrics in Prometheus' text format, for a scraper on this host or holding the token;
    anyone else gets a plain 404, as if the page did not exist."""
    if not _may_read_metrics():
        abort(404)
    registry = REGISTRY
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        # A fresh registry per scrape, as prometheus_client's multiprocess guide requires: the
        # collector reads every worker's files each time.
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _may_read_metrics() -> bool:
    token: str = current_app.config.get("METRICS_TOKEN") or ""
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return True
    return _from_loopback()


def _from_loopback() -> bool:
    # A request that came through a proxy carries these headers; the proxy itself usually runs on
    # this host, so its loopback address would otherwise open the page to the whole internet
    # whenever SOFTATM_TRUSTED_PROXY_HOPS is left at 0.
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        # A unix socket has no address; the reverse proxy may be what is on its other end.
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
