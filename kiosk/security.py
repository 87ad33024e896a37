"""HTTP security headers added to every response, and the hook that keeps private pages out of
caches.

The policy follows OWASP ASVS 5.0 (V3, web frontend security): pages load only this site's own
scripts, styles and images, no inline script runs, and no other site may frame a page.
"""

from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request

from kiosk.config import Environment

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HSTS_MAX_AGE_S = 2 * 365 * 24 * 60 * 60


# Endpoints whose body may differ from the site-wide MAX_CONTENT_LENGTH: a phone camera's photo
# of a QR code is often larger; one camera frame sent for decoding is small.
PHOTO_UPLOAD_SIZE_MAX_BYTES = 10 * 1024 * 1024
CAMERA_FRAME_SIZE_MAX_BYTES = 1024 * 1024
BODY_SIZE_MAX_BYTES_BY_ENDPOINT = {
    "merchants.pay": PHOTO_UPLOAD_SIZE_MAX_BYTES,
    "counter.upload": PHOTO_UPLOAD_SIZE_MAX_BYTES,
    "counter.decode_frame": CAMERA_FRAME_SIZE_MAX_BYTES,
}


def init_body_limits(app: Flask) -> None:
    """Set each request's body limit from its endpoint. Registered before the CSRF check, which
    reads the form (and so the body) before any view runs."""
    app.before_request(_set_body_limit)


def _set_body_limit() -> None:
    limit = BODY_SIZE_MAX_BYTES_BY_ENDPOINT.get(request.endpoint or "")
    if limit is not None:
        request.max_content_length = limit


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)


def mark_no_store() -> None:
    """Keep this request's response out of every cache (browser, proxy, back/forward).

    Whatever signs a user in calls this for each request that carries a signed-in session, so
    that a balance or an identity number shown to one person is never replayed to the next
    person using the same shared phone or post-office computer.
    """
    g.softatm_no_store = True


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    # setdefault lets a view that needs a narrower or wider policy set its own header.
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if current_app.config["SOFTATM_ENV"] is Environment.PRODUCTION:
        headers.setdefault(
            "Strict-Transport-Security", f"max-age={HSTS_MAX_AGE_S}; includeSubDomains"
        )
    if g.get("softatm_no_store", False):
        headers["Cache-Control"] = "no-store"
    return response


def local_path(raw: str | None) -> str | None:
    """``raw`` if it is a path on this site ("/vi?x=1"), else None: never an open redirect.

    Browsers drop tabs and newlines inside a URL and read a backslash as a slash, so a path
    holding either could leave the site as "//evil.example" does: such a target is refused.
    """
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return None
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in raw):
        return None
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return None
    return raw
