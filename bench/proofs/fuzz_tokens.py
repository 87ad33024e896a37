"""Coverage-guided fuzzing (atheris, libFuzzer) of every parser of scanned text.

Targets, each with the typed refusal it may raise and nothing else:

* `kiosk.codes.tokens.verify` (withdrawal and payment codes; key ring from `kiosk.codes.signing`)
  — `CodeError`;
* `kiosk.welfare.vouchers.verify_voucher` (printed welfare vouchers) — `VoucherTokenError`;
* `kiosk.wallet.account_qr.parse_account_qr` — `AccountQrError`;
* `kiosk.vietqr.parse_merchant_qr` (VietQR / EMV) — `VietQrError`;
* `agent_portal.counter.read_token`, which classifies whatever the counter scanned (code, voucher,
  tampered, forged, stale, already paid) against a real database — `CodeRefused`.

An input is a mode byte and a payload. Mode 0: the payload is scanned text (UTF-8, invalid bytes
replaced, as a form post delivers it) and goes to every target. Modes 1 and 2: the payload is a
token *body* that the harness signs with the run's own key — a code (1) or a voucher (2) — so the
fuzzer also explores the checks that run after a valid signature, which random text never reaches.
The seed corpus holds real tokens made by the app (a withdrawal code with its row in the
database, a payment code, a voucher, an account QR, VietQR payloads) in every mode.

Any other exception is a crash: atheris stops, prints the traceback and saves the input. The fuzzer
runs in a child process (libFuzzer ends its process when done); this parent reads its final stats.

Figures: `fuzz_tokens_executions`, `fuzz_tokens_executions_per_s`, `fuzz_tokens_crashes` (must be
0), `fuzz_tokens_corpus` (inputs in the corpus at the end), `fuzz_tokens_seconds`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

CLAIM = (
    "Every parser of scanned text — code tokens and their signatures, welfare vouchers, account "
    "QRs, VietQR/EMV payloads and the counter's classification of a scan — answers any input "
    "with a decoded value or its own typed refusal: no other exception, no crash."
)

DEFAULT_SECONDS = 60.0
INPUT_LENGTH_MAX_BYTES = 600
SETUP_TIMEOUT_S = 180.0
# Per input: libFuzzer reports a hang above this.
INPUT_TIMEOUT_S = 10
MODES = 3
_STAT = re.compile(r"^stat::(\w+):\s*(\d+)", re.MULTILINE)
_DONE = re.compile(r"^Done (\d+) runs in (\d+) second", re.MULTILINE)

INSTRUMENTED = [
    "base45",
    "kiosk.codes",
    "kiosk.welfare.vouchers",
    "kiosk.wallet.account_qr",
    "kiosk.vietqr",
    "agent_portal.counter",
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proofs fuzz-tokens", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help=f"fuzzing time, not counting set-up (default: {DEFAULT_SECONDS:g})",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help="keep the corpus in this folder and start from it next time (default: a temporary "
        "folder with the seeds only)",
    )
    parser.add_argument(
        "--artifacts",
        type=Path,
        default=None,
        help="where a crashing input is saved (default: test-artifacts/fuzz-tokens/)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser


# --- The parent ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.worker:
        return _worker(args)
    from bench.common import emit, log  # noqa: PLC0415

    project = Path(__file__).resolve().parents[2]
    artifacts: Path = args.artifacts or project / "test-artifacts" / "fuzz-tokens"
    artifacts.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        corpus: Path = args.corpus or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="softatm_fuzz_corpus_"))
        )
        corpus.mkdir(parents=True, exist_ok=True)
        log_path = artifacts / "fuzz.log"
        before = {p.name for p in artifacts.glob("crash-*")} | {
            p.name for p in artifacts.glob("timeout-*")
        }
        command = [
            sys.executable,
            "-m",
            "bench.proofs.fuzz_tokens",
            "--worker",
            "--seconds",
            str(args.seconds),
            "--corpus",
            str(corpus),
            "--artifacts",
            str(artifacts),
        ]
        log(f"fuzzing for {args.seconds:g} s (log: {log_path})")
        began = time.monotonic()
        with log_path.open("w") as output:
            try:
                process = subprocess.run(
                    command,
                    cwd=project,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=args.seconds + SETUP_TIMEOUT_S,
                    check=False,
                )
                returncode = process.returncode
            except subprocess.TimeoutExpired:
                returncode = -1
        elapsed = time.monotonic() - began
        text = log_path.read_text(errors="replace")
        stats = {key: int(value) for key, value in _STAT.findall(text)}
        new_artifacts = sorted(
            p.name
            for p in [*artifacts.glob("crash-*"), *artifacts.glob("timeout-*")]
            if p.name not in before
        )
        crashes = len(new_artifacts) or (1 if returncode != 0 else 0)
        executions = stats.get("number_of_executed_units", 0)
        done = _DONE.search(text)
        fuzzed_s = float(done.group(2)) if done else args.seconds
        corpus_size = sum(1 for p in corpus.iterdir() if p.is_file())
        extra: dict[str, Any] = {"targets": 5, "modes": MODES}
        emit("fuzz_tokens_executions", executions, "inputs", **extra)
        emit(
            "fuzz_tokens_executions_per_s",
            stats.get("average_exec_per_sec", executions / max(fuzzed_s, 1e-9)),
            "inputs/s",
        )
        emit("fuzz_tokens_crashes", crashes, "crashes")
        emit("fuzz_tokens_corpus", corpus_size, "inputs")
        emit("fuzz_tokens_seconds", fuzzed_s, "s", wall_s=round(elapsed, 1))
        if crashes or executions == 0:
            tail = "\n".join(text.splitlines()[-40:])
            log(f"fuzz-tokens FAILED (exit {returncode}; artifacts {new_artifacts}):\n{tail}")
            return 1
        log(f"fuzz-tokens: {executions} inputs, no crash")
        return 0


# --- The child: set-up, seeds, the fuzz target ---------------------------------------------------


class Targets:
    """The parsers under test, a real app and database behind the counter's `read_token`."""

    def __init__(self, workdir: Path) -> None:
        import atheris  # type: ignore[import-untyped]  # noqa: PLC0415

        with atheris.instrument_imports(include=INSTRUMENTED):
            from agent_portal import counter  # noqa: PLC0415
            from kiosk import vietqr  # noqa: PLC0415
            from kiosk.codes import signing, tokens  # noqa: PLC0415
            from kiosk.wallet import account_qr  # noqa: PLC0415
            from kiosk.welfare import vouchers  # noqa: PLC0415
        from bench.redeem import Data, ServerConfig  # noqa: PLC0415
        from kiosk.database import get_session, upgrade  # noqa: PLC0415
        from kiosk.keys import signing_keys_dir  # noqa: PLC0415

        self.counter, self.vietqr, self.tokens = counter, vietqr, tokens
        self.account_qr, self.vouchers = account_qr, vouchers
        url = f"sqlite:///{workdir / 'fuzz.db'}"
        upgrade(url)

        class TestConfig(ServerConfig):
            """The app in test mode: production refuses SQLite, and nothing here is served."""

            def overrides(self) -> dict[str, object]:
                return {**super().overrides(), "SOFTATM_ENV": "test"}

        config = TestConfig(url, workdir / "keys", secrets.token_urlsafe(32))
        self.data = Data(config, 2_000_000)
        self.data.create_staff(1, 1)
        self.code = self.data.create_codes(1)[0]
        self.secret_key = config.secret_key
        self.key_ring = signing.load_key_ring(signing_keys_dir(config.keys_dir))
        # Every input is judged at the same instant, so a run is reproducible from its corpus.
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.max_age_s = int(tokens.CODE_AGE_MAX_S)
        self.context = self.data.app.test_request_context()
        self.context.push()
        self.session = get_session()

    def seeds(self) -> list[bytes]:
        """Real tokens of every kind, in every mode."""
        from kiosk.payments.models import IssuedCode  # noqa: PLC0415

        tokens, vietqr = self.tokens, self.vietqr
        code = self.code
        claims = tokens.CodeClaims(
            kind=tokens.CodeKind.WITHDRAWAL,
            code_id=code.code_id,
            account_id=code.account_id,
            amount_vnd=code.amount,
            issued_at=code.created_at.replace(microsecond=0),
            expires_at=code.expires_at.replace(microsecond=0),
            key_id=self.key_ring.signer.key_id,
        )
        withdrawal = tokens.reissue(claims, self.key_ring, self.now).token
        payment = tokens.issue(
            self.key_ring,
            kind=tokens.CodeKind.PAYMENT,
            account_id=code.account_id,
            amount_vnd=150_000,
            now=self.now,
            ttl_s=tokens.PAYMENT_CODE_TTL_S,
            biller_id=7,
            bill_reference="EVN-2026/04.123",
        ).token
        voucher = self.vouchers.sign_voucher(
            self.key_ring,
            IssuedCode(
                id=uuid.uuid4(), amount=500_000, expires_at=self.now + dt.timedelta(days=30)
            ),
        )
        account = self.account_qr.encode_account_qr(4242, secret_key=self.secret_key)
        merchant = vietqr.encode_merchant_qr(
            bank_bin="970436",
            account_number="0011004123456",
            amount_vnd=125_000,
            merchant_name="Tạp hoá Cô Lan",
            merchant_city="Hà Nội",
        )
        static = vietqr.encode_merchant_qr(bank_bin="970415", account_number="113366668888")
        texts = [withdrawal, payment, voucher, account, merchant, static, ""]
        import base45  # type: ignore[import-untyped]  # noqa: PLC0415

        seeds = [bytes([0]) + text.encode() for text in texts]
        for token in (withdrawal, payment):
            data = base45.b45decode(token)
            seeds.append(bytes([1]) + data[: -tokens.SIGNATURE_LENGTH_BYTES])
        body = base45.b45decode(voucher[len(self.vouchers.VOUCHER_PREFIX) :])
        seeds.append(bytes([2]) + body[: self.vouchers.VOUCHER_BODY_LENGTH_BYTES])
        return seeds

    def _sign_code(self, body: bytes) -> str:
        import base45  # noqa: PLC0415

        signature = self.key_ring.signer.sign(self.tokens.SIGNATURE_DOMAIN + body)
        return str(base45.b45encode(body + signature).decode("ascii"))

    def _sign_voucher(self, body: bytes) -> str:
        import base45  # noqa: PLC0415

        vouchers = self.vouchers
        signature = self.key_ring.signer.sign(vouchers.VOUCHER_SIGNATURE_DOMAIN + body)
        return str(vouchers.VOUCHER_PREFIX + base45.b45encode(body + signature).decode("ascii"))

    def _expect(self, call: Callable[[], object], refusal: type[BaseException]) -> None:
        with contextlib.suppress(refusal):
            call()

    def _read_token(self, text: str) -> None:
        try:
            self._expect(
                lambda: self.counter.read_token(
                    self.session, text, self.now, max_age_s=self.max_age_s
                ),
                self.counter.CodeRefused,
            )
        finally:
            self.session.rollback()

    def one_input(self, data: bytes) -> None:
        if not data:
            return
        mode, payload = data[0] % MODES, data[1:]
        tokens = self.tokens
        if mode == 1:
            text = self._sign_code(payload)
            self._expect(
                lambda: tokens.verify(text, self.key_ring, self.now, max_age_s=self.max_age_s),
                tokens.CodeError,
            )
            self._read_token(text)
            return
        if mode == 2:
            text = self._sign_voucher(payload)
            self._expect(
                lambda: self.vouchers.verify_voucher(text, self.key_ring),
                self.vouchers.VoucherTokenError,
            )
            self._read_token(text)
            return
        text = payload.decode("utf-8", errors="replace")
        self._expect(lambda: tokens.verify(text, self.key_ring, self.now), tokens.CodeError)
        self._expect(
            lambda: self.vouchers.verify_voucher(text, self.key_ring),
            self.vouchers.VoucherTokenError,
        )
        self._expect(
            lambda: self.account_qr.parse_account_qr(text, secret_key=self.secret_key),
            self.account_qr.AccountQrError,
        )
        self._expect(lambda: self.vietqr.parse_merchant_qr(text), self.vietqr.VietQrError)
        self._read_token(text)


def _worker(args: argparse.Namespace) -> int:
    import atheris  # noqa: PLC0415

    corpus: Path = args.corpus
    workdir = Path(tempfile.mkdtemp(prefix="softatm_fuzz_"))
    targets = Targets(workdir)
    if not any(corpus.iterdir()):
        for number, seed in enumerate(targets.seeds()):
            (corpus / f"seed-{number:02d}").write_bytes(seed)
    # Every input is also checked once here, before libFuzzer starts: a seed that fails is a bug.
    for path in sorted(corpus.iterdir()):
        targets.one_input(path.read_bytes())
    print(f"set-up done; {len(list(corpus.iterdir()))} inputs in the corpus", flush=True)
    libfuzzer = [
        sys.argv[0],
        f"-max_total_time={max(1, round(args.seconds))}",
        f"-max_len={INPUT_LENGTH_MAX_BYTES}",
        f"-timeout={INPUT_TIMEOUT_S}",
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
        f"-artifact_prefix={args.artifacts}{os.sep}",
        str(corpus),
    ]
    atheris.Setup(libfuzzer, targets.one_input)
    atheris.Fuzz()  # libFuzzer ends the process itself
    return 0


if __name__ == "__main__":
    sys.exit(main())
