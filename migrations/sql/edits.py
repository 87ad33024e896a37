"""Edits that build one migration's `ledger_apply` from the frozen text of an earlier one.

Each edit must find what it replaces exactly once, so that a change to the earlier text fails
loudly here instead of producing a different function.
"""

from __future__ import annotations


def replace_once(text: str, old: str, new: str, *, version: str) -> str:
    """`new` in place of `old`, which must occur exactly once in ledger_apply `version`."""
    if text.count(old) != 1:
        raise ValueError(f"expected exactly one occurrence of {old!r} in ledger_apply {version}")
    return text.replace(old, new)


def replace_each(text: str, old: str, new: str, *, count: int, version: str) -> str:
    """`new` in place of every `old`, which must occur exactly `count` times in ledger_apply
    `version`."""
    if text.count(old) != count:
        raise ValueError(f"expected {count} occurrences of {old!r} in ledger_apply {version}")
    return text.replace(old, new)


def replace_between(text: str, start: str, end: str, new: str, *, version: str) -> str:
    """`new` in place of the text from `start` (exactly once in ledger_apply `version`) to the
    first `end` after it, both included."""
    if text.count(start) != 1:
        raise ValueError(f"expected exactly one occurrence of {start!r} in ledger_apply {version}")
    at = text.index(start)
    stop = text.index(end, at) + len(end)
    return text[:at] + new + text[stop:]


def indented(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line for line in text.splitlines(keepends=True))
