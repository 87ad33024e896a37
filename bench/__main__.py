"""`python -m bench [NAME ...] [options]`: run every benchmark, or the ones named.

The registry below maps a benchmark's name to its module; a module provides `run(args) -> None`
and may provide `add_arguments(group)` for options of its own. Only the modules that run are
imported (and asked for their options), so a benchmark with heavy dependencies costs the others
nothing; `--help` without names lists every benchmark's options.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import traceback
from collections.abc import Sequence
from types import FrameType, ModuleType

from bench import common

# Name -> module. Add qr, redeem, dashboard here as they are written.
BENCHMARKS: dict[str, str] = {
    "dashboard": "bench.dashboard",
    "ledger": "bench.ledger",
    "qr": "bench.qr",
    "redeem": "bench.redeem",
}


def _module(name: str) -> ModuleType:
    return importlib.import_module(BENCHMARKS[name])


def _parser(modules: Sequence[str]) -> argparse.ArgumentParser:
    """The command line, with the options of the benchmarks in `modules`."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run Soft ATM benchmarks; figures go to stdout as JSON lines.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}",
    )
    common.add_common_arguments(parser)
    for name in modules:
        add_arguments = getattr(_module(name), "add_arguments", None)
        if add_arguments is not None:
            add_arguments(parser.add_argument_group(f"{name} benchmark"))
    return parser


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM (a CI timeout, `kill`) must unwind like Ctrl-C so that `finally` blocks drop the
    # scratch databases and stop the client processes.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Only the named benchmarks are imported for their options (all when none is named, or when
    # a name is unknown, so that the parser can tell names from option values).
    named = [word for word in argv if word in BENCHMARKS]
    args = _parser(named or list(BENCHMARKS)).parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        print(
            f"python -m bench: unknown benchmark {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    names: list[str] = args.names or list(BENCHMARKS)
    signal.signal(signal.SIGTERM, _terminate)

    failed: list[str] = []
    for name in names:
        common.log(f"== benchmark {name}")
        try:
            _module(name).run(args)
        except common.BenchmarkError as error:
            common.log(f"benchmark {name} FAILED: {error}")
            failed.append(name)
        except Exception:  # report and go on with the other benchmarks
            common.log(f"benchmark {name} FAILED:\n{traceback.format_exc()}")
            failed.append(name)
    if failed:
        common.log(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
