"""The fee schedule: what a counter operation costs the citizen and earns the post office.

Written as one setting, ``SOFTATM_FEE_SCHEDULE``: comma-separated rules
``operation:from_amount:fee:commission``, where ``operation`` is ``withdrawal``, ``bill`` or
``cash_in``. For an amount, the rule of that operation with the highest ``from_amount`` not above
it applies; an operation without a rule costs nothing and earns nothing. Example::

    withdrawal:0:0:2000,withdrawal:2000000:3300:3300,bill:0:0:1500,cash_in:0:0:1000

The fee is taken from the citizen's wallet (never from cash paid out, so a withdrawal pays the
round amount asked for); the commission is paid to the post office out of fee revenue, so a
commission above the fee is the programme paying for the service.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class FeeOperation(enum.StrEnum):
    WITHDRAWAL = "withdrawal"
    BILL = "bill"
    CASH_IN = "cash_in"


@dataclass(frozen=True, order=True)
class FeeRule:
    operation: FeeOperation
    from_amount: int
    fee: int
    commission: int


@dataclass(frozen=True)
class Charge:
    fee: int
    commission: int


NO_CHARGE = Charge(0, 0)
DEFAULT_FEE_SCHEDULE = (
    "withdrawal:0:0:2000,withdrawal:2000000:3300:3300,bill:0:0:1500,cash_in:0:0:1000"
)


@dataclass(frozen=True)
class FeeSchedule:
    rules: tuple[FeeRule, ...]

    def charge(self, operation: FeeOperation, amount: int) -> Charge:
        found = NO_CHARGE
        for rule in self.rules:  # sorted by operation, then from_amount
            if rule.operation is operation and rule.from_amount <= amount:
                found = Charge(rule.fee, rule.commission)
        return found

    def __str__(self) -> str:
        return ",".join(
            f"{rule.operation}:{rule.from_amount}:{rule.fee}:{rule.commission}"
            for rule in self.rules
        )


def _whole(text: str, what: str) -> int:
    text = text.strip().replace("_", "")
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"{what} must be a whole number of đồng, not {text!r}")
    return int(text)


def parse_fee_schedule(raw: str) -> FeeSchedule:
    """The schedule in ``raw``, or ValueError naming the first bad rule."""
    rules: list[FeeRule] = []
    seen: set[tuple[FeeOperation, int]] = set()
    for item in raw.split(","):
        if not item.strip():
            continue
        parts = item.split(":")
        if len(parts) != 4:
            raise ValueError(f"rule {item.strip()!r} is not operation:from_amount:fee:commission")
        try:
            operation = FeeOperation(parts[0].strip())
        except ValueError:
            known = ", ".join(operation.value for operation in FeeOperation)
            raise ValueError(f"rule {item.strip()!r}: operation must be one of {known}") from None
        rule = FeeRule(
            operation,
            _whole(parts[1], "from_amount"),
            _whole(parts[2], "fee"),
            _whole(parts[3], "commission"),
        )
        if (operation, rule.from_amount) in seen:
            raise ValueError(f"two rules for {operation} from {rule.from_amount}")
        seen.add((operation, rule.from_amount))
        rules.append(rule)
    return FeeSchedule(tuple(sorted(rules)))
