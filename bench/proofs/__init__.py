"""Proof harnesses: runs that show Soft ATM keeps money safe under load, faults and hostile input.

Each harness is a module of this package with

* `main(argv: Sequence[str] | None) -> int` — runs the harness with its own command-line options,
  prints its figures to stdout as JSON lines `{"name": …, "value": …, "unit": …}` (through
  `bench.common.emit`; progress goes to stderr) and returns non-zero when its claim fails;
* `CLAIM` — one or two sentences saying what a passing run proves (for docs/assurance.md).

`python -m bench.proofs NAME [options]` runs one (`make prove NAME=... ARGS=...`), without a name
all of them with their default (short) options; `python -m bench.proofs.report` runs them all and
regenerates docs/assurance.md (`make assurance`). A new harness is added to `HARNESSES` below;
names that are not written yet are skipped by the runner and the report.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

# Name -> module. The order is the order of `make prove` and of docs/assurance.md.
HARNESSES: dict[str, str] = {
    "fuzz-tokens": "bench.proofs.fuzz_tokens",
    "fuzz-api": "bench.proofs.fuzz_api",
    "double-redeem": "bench.proofs.double_redeem",
    "crash": "bench.proofs.crash",
    "authz": "bench.proofs.authz",
    "hardening": "bench.proofs.hardening",
    "privacy": "bench.proofs.privacy",
    "e2e": "bench.proofs.e2e",
}


def available() -> list[str]:
    """The registered harnesses whose module exists, in registry order."""
    return [name for name, module in HARNESSES.items() if importlib.util.find_spec(module)]


def load(name: str) -> ModuleType:
    return importlib.import_module(HARNESSES[name])


def claim(name: str) -> str:
    """What the harness proves: its `CLAIM`, else the first paragraph of its docstring."""
    module = load(name)
    text = getattr(module, "CLAIM", None) or (module.__doc__ or "").split("\n\n", 1)[0]
    return " ".join(str(text).split())
