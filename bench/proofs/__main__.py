"""`python -m bench.proofs [NAME [options]]`: run one proof harness, or all of them.

With a NAME, the rest of the command line is that harness's options (`--help` lists them).
Without one, every harness that exists runs with its default options, one after the other; the
exit status is non-zero when any claim failed.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

from bench import proofs
from bench.common import log


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so `finally` blocks stop servers and drop data.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _terminate)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print(f"\nharnesses: {', '.join(proofs.available())}")
        return 0
    if argv and not argv[0].startswith("-"):
        name, options = argv[0], argv[1:]
        if name not in proofs.HARNESSES:
            print(
                f"python -m bench.proofs: unknown harness {name!r}; "
                f"known: {', '.join(proofs.HARNESSES)}",
                file=sys.stderr,
            )
            return 2
        if name not in proofs.available():
            print(f"python -m bench.proofs: harness {name!r} is not written yet", file=sys.stderr)
            return 2
        return int(proofs.load(name).main(options))
    if argv:
        print("python -m bench.proofs: options need a harness name first", file=sys.stderr)
        return 2
    failed = []
    for name in proofs.available():
        log(f"== proof {name}")
        began = time.monotonic()
        status = int(proofs.load(name).main([]))
        outcome = "ok" if status == 0 else "FAILED"
        log(f"== proof {name}: {outcome} in {time.monotonic() - began:.0f} s")
        if status != 0:
            failed.append(name)
    if failed:
        log(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
