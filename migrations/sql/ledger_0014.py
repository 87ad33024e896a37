"""Database-side code of migration 0014: a small batch runs fewer statements.

`ledger_apply` as in 0013 (migrations/sql/ledger_0013.py, frozen), changed by edits that each
apply to that text exactly once.

Each statement PL/pgSQL runs (a query, an INSERT, a PERFORM) has its plan's executor started
and stopped, and an INSERT into `transfers` also opens its indexes and builds its CHECK
constraints, whatever rows it carries. A batch of two or three new transfers — a payment with
its fee, a payout with its fee and the agent's commission, the product's commonest batches —
ran one replay probe and one INSERT per transfer, and a query to order its key locks. Now:

* a batch of one or two takes its idempotency-key locks in expressions, not statements: two
  keys by comparing their two hashes (the lower first, the order of the query that larger
  batches keep), and the lock is assigned, not PERFORMed (PERFORM runs a query);
* a batch of up to three probes for a replay of any of its keys with one query: an EXISTS per
  key, joined by OR, each planned as the single key's probe of the unique index. (`IN (…)` over
  the keys was planned as a scan of the table on a database without statistics, and PL/pgSQL
  keeps a plan for the life of the connection; see 0009 on `= ANY (array)`);
* a batch of up to three inserts its transfers with one INSERT, in batch order, before its
  reservations are written. (`INSERT … SELECT FROM generate_series(1, n)` was tried: its plan
  depends on n, so PL/pgSQL planned it again at every call, and a payment with its fee cost the
  server more, not less.)

A single transfer ran one probe and one INSERT already; it now takes the same branches as two
and three, and larger batches keep the loops.

Measured on the development machine, one connection, commits not waited for, 30,000 calls in
alternating blocks against 0013: a payment with its fee cost the server 460 µs of CPU instead of
478; a single transfer the same (268 against 265, within the noise). With 16 clients the hot
account made 0.79 of the single-transfer rate in two runs of the benchmark's rounds, where 0013
made 0.67-0.77 in six on the same host that day: a payment's balance rows are held locked for
fewer statements.
Locks, their order, the rules checked and the rows written are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from migrations.sql.edits import indented, replace_between, replace_once
from migrations.sql.ledger_0013 import LEDGER_APPLY as LEDGER_APPLY_0013

# Batches of up to this many transfers probe their keys and insert their rows at once.
ONE_STATEMENT_MAX = 3

_TRANSFER_COLUMNS = """\
id, idempotency_key, batch_id, phase, code, memo,
debit_account_id, debit_shard, credit_account_id, credit_shard, amount,
pending_id, reverses_id, expires_at, created_at,
debit_seq, debit_hash, debit_balance_after,
credit_seq, credit_hash, credit_balance_after"""

_TRANSFER_VALUES = """\
v_ids[{i}], v_keys[{i}], v_batch_id, v_phase[{i}], v_code[{i}], v_memo[{i}],
v_debit[{i}], v_dshard[{i}], v_credit[{i}], v_cshard[{i}], v_amount[{i}],
v_pending[{i}], v_reverses[{i}], v_expires[{i}], v_created,
v_dseq[{i}], v_dhash[{i}], v_dafter[{i}], v_cseq[{i}], v_chash[{i}], v_cafter[{i}]"""


def _insert_transfers(items: list[str], spaces: int) -> str:
    """One INSERT of the batch's transfers at these indexes, in this order."""
    rows = ",\n".join("    (\n" + indented(_TRANSFER_VALUES.format(i=i), 8) + ")" for i in items)
    statement = (
        "INSERT INTO transfers (\n" + indented(_TRANSFER_COLUMNS, 4) + ")\nVALUES\n" + rows + ";\n"
    )
    return indented(statement, spaces)


def _small_batch_branches(make: Callable[[int], str], spaces: int) -> str:
    """`IF n = 1 THEN … ELSIF n = 2 THEN … ELSIF n = 3 THEN …` with the statements `make(n)`
    for each size; the caller adds what larger batches do and the END IF."""
    branches = []
    for count in range(1, ONE_STATEMENT_MAX + 1):
        keyword = "IF" if count == 1 else "ELSIF"
        branches.append(" " * spaces + f"{keyword} n = {count} THEN\n" + make(count))
    return "".join(branches)


def _replay_probe(count: int) -> str:
    # One EXISTS per key, joined by OR: each is planned as the probe of the unique index that
    # the single key's is. (`idempotency_key IN (…)`, one condition over several values, was
    # planned as a scan of the table on a database without statistics.) Built from constants:
    # the keys are the query's parameters.
    probes = "\n            OR ".join(
        f"EXISTS (SELECT 1 FROM transfers WHERE idempotency_key = v_keys[{i}])"  # noqa: S608
        for i in range(1, count + 1)
    )
    return f"""\
        IF {probes} THEN
            RETURN jsonb_build_object('replay', true);
        END IF;
"""


_DECLARATIONS_0013 = "    v_j integer;\nBEGIN\n"

_DECLARATIONS = """\
    v_j integer;
    v_hash1 bigint;
    v_hash2 bigint;
    -- What pg_advisory_xact_lock returns (void, as text): nothing, assigned only so that the
    -- call is an expression.
    v_locked text;
BEGIN
"""

_KEY_LOCKS_0013 = """\
    IF n = 1 THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(v_keys[1], 0));
    ELSE
"""

_KEY_LOCKS = """\
    IF n = 1 THEN
        v_locked := pg_advisory_xact_lock(hashtextextended(v_keys[1], 0));
    ELSIF n = 2 THEN
        -- Two keys: the lower hash first, as the query below orders them.
        v_hash1 := hashtextextended(v_keys[1], 0);
        v_hash2 := hashtextextended(v_keys[2], 0);
        v_locked := pg_advisory_xact_lock(least(v_hash1, v_hash2));
        IF v_hash2 <> v_hash1 THEN
            v_locked := pg_advisory_xact_lock(greatest(v_hash1, v_hash2));
        END IF;
    ELSE
"""

_REPLAY_0013 = """\
    FOREACH v_key IN ARRAY v_keys LOOP
        IF EXISTS (SELECT 1 FROM transfers WHERE idempotency_key = v_key) THEN
            RETURN jsonb_build_object('replay', true);
        END IF;
    END LOOP;
"""

_REPLAY = (
    "    -- A few keys: one query for all of them, a probe per key.\n"
    + _small_batch_branches(_replay_probe, 4)
    + "    ELSE\n"
    + indented(_REPLAY_0013, 4)
    + "    END IF;\n"
)

# 0013 inserted each transfer in the loop that then writes its reservation and its result: the
# loop's head and its INSERT, up to the end of that statement.
_INSERT_0013_START = "    FOR i IN 1 .. n LOOP\n\n        INSERT INTO transfers (\n"
_INSERT_0013_END = "v_cseq[i], v_chash[i], v_cafter[i]);\n\n"

_INSERT = (
    "    -- A few transfers: one INSERT, in batch order; larger batches insert in the loop.\n"
    + _small_batch_branches(
        lambda count: _insert_transfers([str(i) for i in range(1, count + 1)], 8), 4
    )
    + "    END IF;\n\n"
    + "    FOR i IN 1 .. n LOOP\n"
    + f"        IF n > {ONE_STATEMENT_MAX} THEN\n"
    + _insert_transfers(["i"], 12)
    + "        END IF;\n\n"
)


LEDGER_APPLY = LEDGER_APPLY_0013
for _old, _new in (
    (_DECLARATIONS_0013, _DECLARATIONS),
    (_KEY_LOCKS_0013, _KEY_LOCKS),
    (_REPLAY_0013, _REPLAY),
):
    LEDGER_APPLY = replace_once(LEDGER_APPLY, _old, _new, version="0013")
LEDGER_APPLY = replace_between(
    LEDGER_APPLY, _INSERT_0013_START, _INSERT_0013_END, _INSERT, version="0013"
)
