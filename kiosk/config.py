"""Settings for the web app, read once from the environment at startup.

This module owns every setting the app reads and how each string becomes a typed value. Anything
that is wrong is collected and reported in one `ConfigError` before the app serves a request:
an unknown ``SOFTATM_*`` variable, a value that does not convert, and in production a missing
secret, a SQLite database or debug mode.
"""

from __future__ import annotations

import enum
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from agent_portal.fees import DEFAULT_FEE_SCHEDULE, FeeSchedule, parse_fee_schedule

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "var" / "softatm.sqlite3"
DEFAULT_KEYS_DIR = PROJECT_ROOT / "var" / "keys"

# Environment variables with this prefix belong to Soft ATM, so a misspelt one is an error
# rather than a setting that silently keeps its default.
SETTING_PREFIX = "SOFTATM_"

# A session-signing key shorter than this could be brute-forced offline from one signed cookie.
SECRET_KEY_LENGTH_MIN_CHARS = 32
# A random key of 32+ URL-safe characters has far more distinct characters than this; a
# placeholder such as "changeme" repeated, or "xxxx…", has fewer.
SECRET_KEY_DISTINCT_MIN = 12
# Bounds every request body; the largest expected upload is a welfare beneficiary list.
REQUEST_SIZE_MAX_BYTES = 2 * 1024 * 1024


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ConfigError(Exception):
    """The configuration cannot run; the message names every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "Soft ATM cannot start:\n" + "\n".join(f"- {problem}" for problem in problems)
        )


def to_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected one of 1, 0, true, false, yes, no, on, off")


def to_environment(raw: str) -> Environment:
    try:
        return Environment(raw.strip().lower())
    except ValueError:
        allowed = ", ".join(environment.value for environment in Environment)
        raise ValueError(f"expected one of {allowed}") from None


def to_database_url(raw: str) -> str:
    try:
        make_url(raw.strip())
    except ArgumentError as error:
        raise ValueError(f"not a database URL ({error})") from None
    return raw.strip()


def to_secret(raw: str) -> str:
    return raw


def to_path(raw: str) -> Path:
    path = Path(raw.strip())
    if not path.is_absolute():
        raise ValueError("must be an absolute path")
    return path


def to_positive_int(raw: str) -> int:
    text = raw.strip().replace("_", "")
    if not text.isdigit():
        raise ValueError("expected a whole number greater than zero")
    value = int(text)
    if value <= 0:
        raise ValueError("expected a whole number greater than zero")
    return value


def to_proxy_hops(raw: str) -> int:
    text = raw.strip()
    if text not in {"0", "1"}:
        raise ValueError("expected 0 (clients connect directly) or 1 (behind one reverse proxy)")
    return int(text)


@dataclass(frozen=True)
class Setting:
    """One setting: its key in ``app.config``, the environment variable it comes from, and how
    the variable's string becomes a value of ``value_type``."""

    key: str
    variable: str
    convert: Callable[[str], Any]
    value_type: type
    description: str
    # Used when the variable is unset; None means "no default" (handled by the rules in `load`).
    default: Any = None


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "SOFTATM_ENV",
        "SOFTATM_ENV",
        to_environment,
        Environment,
        "development, test or production (default development)",
    ),
    Setting(
        "SECRET_KEY",
        "SECRET_KEY",
        to_secret,
        str,
        "signs sessions and CSRF tokens; required in production "
        f"(at least {SECRET_KEY_LENGTH_MIN_CHARS} characters)",
    ),
    Setting(
        "DATABASE_URL",
        "DATABASE_URL",
        to_database_url,
        str,
        f"SQLAlchemy URL; default SQLite at {DEFAULT_SQLITE_PATH.relative_to(PROJECT_ROOT)}, "
        "PostgreSQL required in production",
    ),
    # Flask's own variable, so that `softatm --debug` and `flask --debug` keep working; read
    # here with the same strict conversion as every other setting.
    Setting("DEBUG", "FLASK_DEBUG", to_bool, bool, "debug mode; refused in production"),
    Setting(
        "KEYS_DIR",
        "SOFTATM_KEYS_DIR",
        to_path,
        Path,
        "folder of signing and data-encryption keys (never in the database or the repo); "
        f"default {DEFAULT_KEYS_DIR.relative_to(PROJECT_ROOT)} outside production, where it is "
        "required",
    ),
    Setting(
        "WITHDRAWAL_CODE_TTL_S",
        "SOFTATM_WITHDRAWAL_CODE_TTL_S",
        to_positive_int,
        int,
        "how long a withdrawal or payment code stays valid, in seconds",
        15 * 60,
    ),
    Setting(
        "CODE_REFRESH_S",
        "SOFTATM_CODE_REFRESH_S",
        to_positive_int,
        int,
        "how often the code page re-signs the shown code, in seconds",
        30,
    ),
    Setting(
        "FALLBACK_CODE_TTL_S",
        "SOFTATM_FALLBACK_CODE_TTL_S",
        to_positive_int,
        int,
        "how long a numeric fallback code stays valid, in seconds",
        5 * 60,
    ),
    Setting(
        "WITHDRAWAL_DENOMINATION_VND",
        "SOFTATM_WITHDRAWAL_DENOMINATION_VND",
        to_positive_int,
        int,
        "withdrawals are whole multiples of this many đồng (the smallest note post offices pay)",
        10_000,
    ),
    Setting(
        "TRANSACTION_MAX_VND",
        "SOFTATM_TRANSACTION_MAX_VND",
        to_positive_int,
        int,
        "largest single outgoing payment or withdrawal of a verified account, in đồng",
        20_000_000,
    ),
    Setting(
        "DAILY_OUTGOING_MAX_VND",
        "SOFTATM_DAILY_OUTGOING_MAX_VND",
        to_positive_int,
        int,
        "most a verified account may send or withdraw per day (Asia/Ho_Chi_Minh), in đồng",
        50_000_000,
    ),
    Setting(
        "MONTHLY_OUTGOING_MAX_VND",
        "SOFTATM_MONTHLY_OUTGOING_MAX_VND",
        to_positive_int,
        int,
        "most a verified account may send or withdraw per calendar month, in đồng "
        "(State Bank e-wallet rule: 100 million)",
        100_000_000,
    ),
    Setting(
        "WALLET_BALANCE_MAX_VND",
        "SOFTATM_WALLET_BALANCE_MAX_VND",
        to_positive_int,
        int,
        "most a wallet may hold after a cash-in at the counter, in đồng",
        100_000_000,
    ),
    Setting(
        "STEP_UP_ABOVE_VND",
        "SOFTATM_STEP_UP_ABOVE_VND",
        to_positive_int,
        int,
        "a withdrawal or payment above this many đồng needs the citizen's TOTP code",
        10_000_000,
    ),
    Setting(
        "TRUSTED_PROXY_HOPS",
        "SOFTATM_TRUSTED_PROXY_HOPS",
        to_proxy_hops,
        int,
        "1 behind one reverse proxy (nginx): the client address and scheme are read from its "
        "X-Forwarded-For and X-Forwarded-Proto; 0 (default) when clients connect directly",
        0,
    ),
    # An empty default rather than none, so that the key is always in app.config.
    Setting(
        "METRICS_TOKEN",
        "SOFTATM_METRICS_TOKEN",
        to_secret,
        str,
        "bearer token that lets a scraper not on this host read /metrics (unset: loopback only)",
        "",
    ),
    Setting(
        "PAYOUT_APPROVAL_ABOVE_VND",
        "SOFTATM_PAYOUT_APPROVAL_ABOVE_VND",
        to_positive_int,
        int,
        "a counter payout above this many đồng needs the agent's fresh TOTP code and a "
        "supervisor's approval",
        5_000_000,
    ),
    Setting(
        "LOW_FLOAT_WARNING_VND",
        "SOFTATM_LOW_FLOAT_WARNING_VND",
        to_positive_int,
        int,
        "the counter warns when the cash in an agent's drawer falls below this many đồng",
        2_000_000,
    ),
    Setting(
        "DRAWER_VARIANCE_SIGN_OFF_ABOVE_VND",
        "SOFTATM_DRAWER_VARIANCE_SIGN_OFF_ABOVE_VND",
        to_positive_int,
        int,
        "closing a drawer whose counted cash differs from the expected by more than this many "
        "đồng needs a supervisor's sign-off",
        50_000,
    ),
    Setting(
        "FEE_SCHEDULE",
        "SOFTATM_FEE_SCHEDULE",
        parse_fee_schedule,
        FeeSchedule,
        "counter fees and agent commissions: operation:from_amount:fee:commission, "
        "comma-separated (see agent_portal/fees.py)",
        parse_fee_schedule(DEFAULT_FEE_SCHEDULE),
    ),
    Setting(
        "VIETQR_ACQUIRER_BIN",
        "SOFTATM_VIETQR_ACQUIRER_BIN",
        str,
        str,
        "6-digit institution BIN written into merchant VietQR codes",
        "970499",
    ),
)
SETTINGS_BY_KEY = {setting.key: setting for setting in SETTINGS}
KNOWN_PREFIXED_NAMES = frozenset(
    name
    for setting in SETTINGS
    for name in (setting.key, setting.variable)
    if name.startswith(SETTING_PREFIX)
)


def load(
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """Return the Flask config built from ``environ`` (default: the process environment).

    ``overrides`` is the plain mapping tests pass to ``create_app``: keys of `SETTINGS` replace
    the environment (a string goes through the same conversion, any other value must already
    have the right type) and any other key, such as ``TESTING``, is handed to Flask unchanged.
    Raises `ConfigError` naming every problem.
    """
    if environ is None:
        environ = os.environ
    overrides = dict(overrides or {})
    problems: list[str] = []

    given = {name for name in (*environ, *overrides) if name.startswith(SETTING_PREFIX)}
    unknown = sorted(given - KNOWN_PREFIXED_NAMES)
    for name in unknown:
        problems.append(f"{name} is not a Soft ATM setting (known: {_known_names()})")

    values: dict[str, Any] = {}
    invalid: set[str] = set()
    for setting in SETTINGS:
        try:
            value = _read(setting, overrides, environ)
        except ValueError as error:
            problems.append(str(error))
            invalid.add(setting.key)
            continue
        if value is not None:
            values[setting.key] = value
    if "SOFTATM_ENV" in invalid:
        # Every other rule depends on the environment, so checking further would mislead.
        raise ConfigError(problems)

    environment: Environment = values.get("SOFTATM_ENV", Environment.DEVELOPMENT)
    production = environment is Environment.PRODUCTION

    secret_key = values.get("SECRET_KEY")
    warn_random_secret_key = False
    if secret_key is None and "SECRET_KEY" not in invalid:
        if production:
            problems.append(
                "SECRET_KEY is not set; production needs a random secret of at least "
                f"{SECRET_KEY_LENGTH_MIN_CHARS} characters"
            )
        else:
            secret_key = _process_secret_key()
            warn_random_secret_key = environment is Environment.DEVELOPMENT
    elif secret_key is not None and production and len(secret_key) < SECRET_KEY_LENGTH_MIN_CHARS:
        problems.append(
            f"SECRET_KEY is {len(secret_key)} characters; production needs at least "
            f"{SECRET_KEY_LENGTH_MIN_CHARS}"
        )
    elif secret_key is not None and production and len(set(secret_key)) < SECRET_KEY_DISTINCT_MIN:
        problems.append(
            "SECRET_KEY looks like a placeholder, not a random secret (too few different "
            "characters); generate one, e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'"
        )

    database_url = values.get("DATABASE_URL")
    use_default_database = False
    if database_url is None and "DATABASE_URL" not in invalid:
        if production:
            problems.append("DATABASE_URL is not set; production needs a PostgreSQL URL")
        else:
            use_default_database = True
            database_url = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    elif (
        database_url is not None
        and production
        and make_url(database_url).get_backend_name() == "sqlite"
    ):
        problems.append(
            "DATABASE_URL points at SQLite; production needs PostgreSQL "
            "(SQLite serialises every write and has no row locks for concurrent payouts)"
        )

    keys_dir = values.get("KEYS_DIR")
    if keys_dir is None and "KEYS_DIR" not in invalid:
        if production:
            problems.append(
                "SOFTATM_KEYS_DIR is not set; production needs a folder of keys kept outside "
                "the database and the repository"
            )
        else:
            keys_dir = DEFAULT_KEYS_DIR
    elif keys_dir is not None and production and keys_dir.resolve().is_relative_to(PROJECT_ROOT):
        problems.append(
            f"SOFTATM_KEYS_DIR={keys_dir} is inside the application's folder; production keys "
            "belong outside it (a checkout's or image's own keys are development keys)"
        )

    debug = values.get("DEBUG", False)
    if production and debug:
        problems.append(
            "debug mode is on (FLASK_DEBUG or DEBUG); production refuses it because the "
            "debugger runs arbitrary code from the browser"
        )

    if problems:
        raise ConfigError(problems)
    if use_default_database:
        DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    if warn_random_secret_key:
        logger.warning(
            "SECRET_KEY is not set: using a random key for this process only. Sessions end "
            "when it exits, and processes started separately cannot read each other's "
            "sessions; set SECRET_KEY to keep them."
        )

    config: dict[str, object] = {
        "SOFTATM_ENV": environment,
        "SECRET_KEY": secret_key,
        "DATABASE_URL": database_url,
        "DEBUG": debug,
        "KEYS_DIR": keys_dir,
        **{
            setting.key: values.get(setting.key, setting.default)
            for setting in SETTINGS
            if setting.default is not None
        },
        "MAX_CONTENT_LENGTH": REQUEST_SIZE_MAX_BYTES,
        # The __Host- prefix makes the browser refuse the cookie unless it is Secure, host-only
        # and for path /, which only holds over HTTPS; development on plain HTTP uses a plain name.
        "SESSION_COOKIE_NAME": "__Host-softatm_session" if production else "softatm_session",
        "SESSION_COOKIE_SECURE": production,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PREFERRED_URL_SCHEME": "https" if production else "http",
    }
    config.update({key: value for key, value in overrides.items() if key not in SETTINGS_BY_KEY})
    return config


def _read(setting: Setting, overrides: Mapping[str, object], environ: Mapping[str, str]) -> Any:
    """Return the setting's typed value, or None when it is not set (an empty variable counts
    as not set, as in ``SECRET_KEY= softatm …``). Raises ValueError naming the setting."""
    if setting.key in overrides:
        source, raw = setting.key, overrides[setting.key]
    else:
        source, raw = setting.variable, environ.get(setting.variable)
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            return setting.convert(raw)
        except ValueError as error:
            shown = "(hidden)" if setting.key == "SECRET_KEY" else repr(raw)
            raise ValueError(f"{source}={shown} is invalid: {error}") from None
    if isinstance(raw, setting.value_type):
        return raw
    expected = "" if setting.value_type is str else f"a {setting.value_type.__name__} or "
    raise ValueError(f"{source} must be {expected}a string, not {type(raw).__name__}")


def _known_names() -> str:
    return ", ".join(sorted(KNOWN_PREFIXED_NAMES))


@cache
def _process_secret_key() -> str:
    # Generated once per process so that every app this process creates (tests, CLI) shares it.
    return secrets.token_urlsafe(48)
