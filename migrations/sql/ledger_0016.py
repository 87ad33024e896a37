"""Database-side code of migration 0016: transfers with a fee leg.

`ledger_apply` as in 0015 (migrations/sql/ledger_0015.py, frozen), changed by edits that each
apply to that text exactly as often as stated.

A posted transfer may carry a fee leg (`fee_account`, `fee_amount` in its item): the debit
account pays the amount and the fee, the credit account receives the amount, the fee account
the fee. A reversal takes the fee leg from its original and moves it back, from the fee account
to its credit account (the original's payer). The fee account's side is one more UPDATE of its
balance row (its shard: slot % shard_count, as for any new side) and six more columns of the
transfer's row; no second transfer, key, lock, probe or row.

A batch says `"fees": true` when any of its transfers has a fee leg or is a reversal (whose
original may have one); only then are the fee fields read, so that a batch without fees pays
for them as little as it can. Sides carry a leg (1 debit, 2 credit, 3 fee) where they carried a
debit flag; batch order is (transfer, leg), and so is the order in which the earliest refusal
is found. The answer gives each transfer's fee account, fee and the fee account's balance after
it, NULL without a leg.

Measured on the development machine, one connection, commits not waited for, medians of seven
alternating blocks of 1,500 calls against 0015 (client and server time per call): a payment
with its fee as a fee leg took 296 µs, where 0015 took 345 µs for the payment and its fee as
two linked transfers; a single transfer without a fee 216 against 209 µs (7 µs more: the fee fields
and the sides' legs).
"""

from __future__ import annotations

from migrations.sql.edits import replace_between, replace_each, replace_once
from migrations.sql.ledger_0015 import LEDGER_APPLY as LEDGER_APPLY_0015

FIRST_MISSING_ACCOUNT = """
CREATE FUNCTION ledger_first_missing_account(p_debits bigint[], p_credits bigint[],
                                             p_fees bigint[])
RETURNS bigint LANGUAGE sql STABLE AS $fn$
    -- The first account of a batch (debit, credit, then fee account, transfer by transfer)
    -- without a balance row: the one a "not found" error names.
    SELECT a.account
      FROM unnest(p_debits, p_credits, p_fees) WITH ORDINALITY AS u(debit, credit, fee, o)
     CROSS JOIN LATERAL (VALUES (1, u.debit), (2, u.credit), (3, u.fee)) AS a(leg, account)
     WHERE a.account IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM account_balances b WHERE b.account_id = a.account)
     ORDER BY u.o, a.leg
     LIMIT 1
$fn$
"""

DROP_FIRST_MISSING_ACCOUNT = (
    "DROP FUNCTION IF EXISTS ledger_first_missing_account(bigint[], bigint[], bigint[])"
)

_V = "0015"

# --- Declarations and the batch's fields ---------------------------------------------------------

_DECLARATIONS = (
    (
        "    v_item jsonb;\n",
        """\
    -- Whether any transfer of the batch may have a fee leg (one with a fee, or a reversal):
    -- without one, the fee fields are neither read nor added.
    v_fees boolean := p_batch ? 'fees';
    v_item jsonb;
""",
    ),
    (
        "    v_cshard smallint[] := '{}';\n",
        """\
    v_cshard smallint[] := '{}';
    v_fee_account bigint[] := '{}';
    v_fee_amount bigint[] := '{}';
    v_fshard smallint[] := '{}';
""",
    ),
    ("    v_is_debit boolean;\n", ""),
    (
        """\
    v_side_debit boolean[];
    v_i integer;
    v_refused_item integer;
""",
        """\
    v_fseq bigint[] := '{}';
    v_fhash bytea[] := '{}';
    v_fafter bigint[] := '{}';
    -- Which side of its transfer each entry is: 1 its debit, 2 its credit, 3 its fee leg.
    v_side_leg smallint[];
    v_leg smallint;
    v_m integer;
    v_i integer;
    v_refused_item integer;
    v_refused_leg smallint;
""",
    ),
    (
        "            v_amount[i] := (v_item->>'amount')::bigint;\n",
        """\
            v_amount[i] := (v_item->>'amount')::bigint;
            IF v_fees THEN
                v_fee_account[i] := (v_item->>'fee_account')::bigint;
                v_fee_amount[i] := (v_item->>'fee_amount')::bigint;
            END IF;
""",
    ),
    (
        """\
               array_agg(x.credit ORDER BY x.o), array_agg(x.amount ORDER BY x.o)
          INTO v_ids, v_keys, v_phase, v_code, v_memo, v_pending, v_reverses, v_expires,
               v_digest, v_debit, v_credit, v_amount
""",
        """\
               array_agg(x.credit ORDER BY x.o), array_agg(x.amount ORDER BY x.o),
               array_agg(x.fee_account ORDER BY x.o), array_agg(x.fee_amount ORDER BY x.o)
          INTO v_ids, v_keys, v_phase, v_code, v_memo, v_pending, v_reverses, v_expires,
               v_digest, v_debit, v_credit, v_amount, v_fee_account, v_fee_amount
""",
    ),
    (
        """\
                   credit bigint, amount bigint))
               WITH ORDINALITY AS x(id, key, phase, code, memo, pending_id, reverses_id,
                                    expires_at, digest, debit, credit, amount, o);
""",
        """\
                   credit bigint, amount bigint, fee_account bigint, fee_amount bigint))
               WITH ORDINALITY AS x(id, key, phase, code, memo, pending_id, reverses_id,
                                    expires_at, digest, debit, credit, amount, fee_account,
                                    fee_amount, o);
""",
    ),
    (
        "        v_cshard[i] := NULL;\n",
        "        v_cshard[i] := NULL;\n        v_fshard[i] := NULL;\n",
    ),
    (
        "            v_amount[i] := v_original.amount;\n",
        """\
            v_amount[i] := v_original.amount;
            -- The fee leg comes back too: from the fee account to the original's payer.
            v_fee_account[i] := v_original.fee_account_id;
            v_fshard[i] := v_original.fee_shard;
            v_fee_amount[i] := v_original.fee_amount;
""",
    ),
)

# --- The order of the sides: a fee leg is a third side --------------------------------------------

_ORDER_START = "    IF n = 1 AND v_dshard[1] IS NULL AND v_cshard[1] IS NULL THEN\n"
_ORDER_END = "         ORDER BY b.account_id, b.shard FOR UPDATE OF b;\n"
_ORDER = """\
    IF n = 1 AND v_dshard[1] IS NULL AND v_cshard[1] IS NULL AND v_fee_account[1] IS NULL THEN
        -- One new transfer without a fee leg: its two sides, the lower account first.
        v_side_item := ARRAY[1, 1];
        v_side_leg := CASE WHEN v_debit[1] < v_credit[1] THEN ARRAY[1, 2] ELSE ARRAY[2, 1] END;
    ELSIF n <= 3 AND array_remove(v_dshard || v_cshard || v_fshard, NULL) = '{}' THEN
        -- A few new transfers: the order below, sorted here by insertion. Sides are taken in
        -- batch order (a transfer's debit, its credit, its fee leg) and each goes after every
        -- side with a lower or equal account, so an account's sides stay in batch order.
        v_side_item := '{}';
        v_side_leg := '{}';
        v_side_account := '{}';
        v_m := 0;
        FOR k IN 1 .. 3 * n LOOP
            v_i := (k + 2) / 3;
            v_leg := (k - 1) % 3 + 1;
            v_account := CASE v_leg WHEN 1 THEN v_debit[v_i] WHEN 2 THEN v_credit[v_i]
                                    ELSE v_fee_account[v_i] END;
            CONTINUE WHEN v_account IS NULL;
            v_m := v_m + 1;
            v_j := v_m;
            WHILE v_j > 1 AND v_side_account[v_j - 1] > v_account LOOP
                v_side_account[v_j] := v_side_account[v_j - 1];
                v_side_item[v_j] := v_side_item[v_j - 1];
                v_side_leg[v_j] := v_side_leg[v_j - 1];
                v_j := v_j - 1;
            END LOOP;
            v_side_account[v_j] := v_account;
            v_side_item[v_j] := v_i;
            v_side_leg[v_j] := v_leg;
        END LOOP;
    ELSIF array_remove(v_dshard || v_cshard || v_fshard, NULL) = '{}' THEN
        -- Only new transfers (the usual batch): every side in ascending order of account, then
        -- of transfer. Each side's UPDATE below locks its row; no statement locks them first.
        SELECT array_agg(s.item::integer ORDER BY s.account, s.item, s.leg),
               array_agg(s.leg ORDER BY s.account, s.item, s.leg)
          INTO v_side_item, v_side_leg
          FROM (SELECT d.account, d.item, 1::smallint AS leg
                  FROM unnest(v_debit) WITH ORDINALITY AS d(account, item)
                UNION ALL
                SELECT c.account, c.item, 2::smallint
                  FROM unnest(v_credit) WITH ORDINALITY AS c(account, item)
                UNION ALL
                SELECT f.account, f.item, 3::smallint
                  FROM unnest(v_fee_account) WITH ORDINALITY AS f(account, item)
                 WHERE f.account IS NOT NULL) AS s;
    ELSE
        -- Resolutions and reversals name their shards: every row is locked first, in order,
        -- and the sides are updated in batch order.
        v_side_item := '{}';
        v_side_leg := '{}';
        FOR i IN 1 .. n LOOP
            v_side_item := v_side_item || i || i;
            v_side_leg := v_side_leg || 1::smallint || 2::smallint;
            IF v_fee_account[i] IS NOT NULL THEN
                v_side_item := v_side_item || i;
                v_side_leg := v_side_leg || 3::smallint;
            END IF;
        END LOOP;
        PERFORM 1 FROM account_balances b
          JOIN (SELECT DISTINCT u.account_id, u.shard
                  FROM unnest(v_debit || v_credit || v_fee_account,
                              v_dshard || v_cshard || v_fshard) AS u(account_id, shard)) u
            ON b.account_id = u.account_id AND b.shard = coalesce(u.shard, v_slot % b.shard_count)
         ORDER BY b.account_id, b.shard FOR UPDATE OF b;
"""

# --- Each side's deltas, by its leg ---------------------------------------------------------------

_SIDES_START = "    FOR k IN 1 .. 2 * n LOOP\n        v_i := v_side_item[k];\n"
_SIDES_END = "AND (v_i > v_refused_item OR (v_i = v_refused_item AND NOT v_is_debit));\n"
_SIDES = """\
    FOR k IN 1 .. cardinality(v_side_item) LOOP
        v_i := v_side_item[k];
        v_leg := v_side_leg[k];
        -- After a refusal, only the sides that batch order would reach before it are tried:
        -- the earliest refusal is the one named. (An account's sides come in batch order, so
        -- no more of a refused account's sides are tried either.)
        CONTINUE WHEN v_refused_item IS NOT NULL
            AND (v_i > v_refused_item OR (v_i = v_refused_item AND v_leg > v_refused_leg));
"""

_DELTAS_START = "        IF v_is_debit THEN\n            v_account := v_debit[v_i];\n"
_DELTAS_END = "            v_cpend := v_pending_delta;\n        END IF;\n"
_DELTAS = """\
        IF v_leg = 1 THEN
            v_account := v_debit[v_i];
            v_shard := v_dshard[v_i];
            v_dp := v_posted;
            v_dpend := v_pending_delta;
            v_cp := 0;
            v_cpend := 0;
        ELSIF v_leg = 2 THEN
            v_account := v_credit[v_i];
            v_shard := v_cshard[v_i];
            v_dp := 0;
            v_dpend := 0;
            v_cp := v_posted;
            v_cpend := v_pending_delta;
        ELSE
            -- The fee leg (posted transfers only): the fee account receives the fee, or in a
            -- reversal pays it back.
            v_account := v_fee_account[v_i];
            v_shard := v_fshard[v_i];
            v_dp := CASE WHEN v_reverses[v_i] IS NULL THEN 0 ELSE v_fee_amount[v_i] END;
            v_cp := v_fee_amount[v_i] - v_dp;
            v_dpend := 0;
            v_cpend := 0;
        END IF;
        IF v_fees AND v_fee_amount[v_i] IS NOT NULL THEN
            -- The payer pays the fee too: the debit account, or in a reversal the credit
            -- account (the original's debit account) gets it back.
            IF v_leg = 1 AND v_reverses[v_i] IS NULL THEN
                v_dp := v_dp + v_fee_amount[v_i];
            ELSIF v_leg = 2 AND v_reverses[v_i] IS NOT NULL THEN
                v_cp := v_cp + v_fee_amount[v_i];
            END IF;
        END IF;
"""

_AFTER_SIDES = (
    (
        "            v_shard := CASE WHEN v_is_debit THEN v_dshard[v_i] ELSE v_cshard[v_i] END;\n",
        """\
            v_shard := CASE v_leg WHEN 1 THEN v_dshard[v_i] WHEN 2 THEN v_cshard[v_i]
                                  ELSE v_fshard[v_i] END;
""",
    ),
    (
        """\
            v_refused_item := v_i;
            v_refused_account := v_account;
        ELSIF v_is_debit THEN
""",
        """\
            v_refused_item := v_i;
            v_refused_leg := v_leg;
            v_refused_account := v_account;
        ELSIF v_leg = 1 THEN
""",
    ),
    (
        """\
        ELSE
            v_cshard[v_i] := v_shard;
            v_cseq[v_i] := v_seq;
            v_chash[v_i] := v_hash;
            v_cafter[v_i] := v_after;
        END IF;
""",
        """\
        ELSIF v_leg = 2 THEN
            v_cshard[v_i] := v_shard;
            v_cseq[v_i] := v_seq;
            v_chash[v_i] := v_hash;
            v_cafter[v_i] := v_after;
        ELSE
            v_fshard[v_i] := v_shard;
            v_fseq[v_i] := v_seq;
            v_fhash[v_i] := v_hash;
            v_fafter[v_i] := v_after;
        END IF;
""",
    ),
    (
        """\
        v_results := v_results || jsonb_build_array(
            v_debit[i], v_credit[i], v_amount[i], v_dafter[i], v_cafter[i]);
""",
        """\
        v_results := v_results || jsonb_build_array(
            v_debit[i], v_credit[i], v_amount[i], v_dafter[i], v_cafter[i],
            v_fee_account[i], v_fee_amount[i], v_fafter[i]);
""",
    ),
)

# --- The rows: six more columns, written in every INSERT -----------------------------------------

_FEE_COLUMNS = "fee_account_id, fee_shard, fee_amount, fee_seq, fee_hash, fee_balance_after"
# (The transfer, how its row's values end, how often in 0015, their indentation.)
_ROW_ENDS = (
    ("1", ");", 1, 16),
    ("1", "),", 2, 16),
    ("2", ");", 1, 16),
    ("2", "),", 1, 16),
    ("3", ");", 1, 16),
    ("i", ");", 1, 20),
)

LEDGER_APPLY = LEDGER_APPLY_0015
for _old, _new in _DECLARATIONS + _AFTER_SIDES:
    LEDGER_APPLY = replace_once(LEDGER_APPLY, _old, _new, version=_V)
LEDGER_APPLY = replace_between(LEDGER_APPLY, _ORDER_START, _ORDER_END, _ORDER, version=_V)
LEDGER_APPLY = replace_between(LEDGER_APPLY, _SIDES_START, _SIDES_END, _SIDES, version=_V)
LEDGER_APPLY = replace_between(LEDGER_APPLY, _DELTAS_START, _DELTAS_END, _DELTAS, version=_V)
LEDGER_APPLY = replace_each(
    LEDGER_APPLY,
    "ledger_first_missing_account(v_debit, v_credit)",
    "ledger_first_missing_account(v_debit, v_credit, v_fee_account)",
    count=2,
    version=_V,
)
for _indent in (16, 12):  # the longer first: it holds the shorter
    _columns = " " * _indent + "credit_seq, credit_hash, credit_balance_after"
    LEDGER_APPLY = replace_each(
        LEDGER_APPLY,
        _columns + ")",
        f"{_columns},\n{' ' * _indent}{_FEE_COLUMNS})",
        count=3 if _indent == 12 else 1,
        version=_V,
    )
for _i, _end, _count, _indent in _ROW_ENDS:
    _pad = " " * _indent
    _row = (
        f"v_dseq[{_i}], v_dhash[{_i}], v_dafter[{_i}], v_cseq[{_i}], v_chash[{_i}], v_cafter[{_i}]"
    )
    _fee = f"v_fee_account[{_i}], v_fshard[{_i}], v_fee_amount[{_i}], v_fseq[{_i}], v_fhash[{_i}],"
    LEDGER_APPLY = replace_each(
        LEDGER_APPLY,
        f"{_pad}{_row}{_end}",
        f"{_pad}{_row},\n{_pad}{_fee}\n{_pad}v_fafter[{_i}]{_end}",
        count=_count,
        version=_V,
    )
