"""Database-side code of migration 0009, frozen with it: `ledger_apply` with fewer statements.

The rules, the lock order and the errors are those of 0001 (see there for the SQLSTATEs); what
changed is the cost of a call:

* a small batch reads its fields with plain assignments instead of a query over the JSON, and a
  batch of one locks its key with one call;
* the shard of a new transfer's account is the balance row's own `shard_count` (copied from the
  account, like the balance rules) applied to the backend's pid, found by the statement that
  locks the rows: no query looks the accounts up (0001 made one per transfer);
* both sides of a transfer go through one UPDATE statement, given the deltas of its side.
"""

from __future__ import annotations

FIRST_MISSING_ACCOUNT = r"""
CREATE FUNCTION ledger_first_missing_account(p_debits bigint[], p_credits bigint[])
RETURNS bigint LANGUAGE sql STABLE AS $fn$
    -- The first account of a batch (debit, then credit, transfer by transfer) without a
    -- balance row: the one a "not found" error names.
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM account_balances b WHERE b.account_id = u.debit)
                THEN u.debit ELSE u.credit END
      FROM unnest(p_debits, p_credits) WITH ORDINALITY AS u(debit, credit, o)
     WHERE NOT EXISTS (SELECT 1 FROM account_balances b WHERE b.account_id = u.debit)
        OR NOT EXISTS (SELECT 1 FROM account_balances b WHERE b.account_id = u.credit)
     ORDER BY u.o
     LIMIT 1
$fn$
"""

LEDGER_APPLY = r"""
CREATE OR REPLACE FUNCTION ledger_apply(p_batch jsonb, p_now timestamptz) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
    v_batch_id uuid := (p_batch->>'batch_id')::uuid;
    v_created timestamptz := (p_batch->>'created_at')::timestamptz;
    n integer := jsonb_array_length(p_batch->'items');
    v_pid integer := pg_backend_pid();
    v_item jsonb;
    v_ids uuid[] := '{}';
    v_keys text[] := '{}';
    v_phase text[] := '{}';
    v_code text[] := '{}';
    v_memo text[] := '{}';
    v_pending uuid[] := '{}';
    v_reverses uuid[] := '{}';
    v_expires timestamptz[] := '{}';
    v_digest bytea[] := '{}';
    v_debit bigint[] := '{}';
    v_credit bigint[] := '{}';
    v_amount bigint[] := '{}';
    v_dshard smallint[] := '{}';
    v_cshard smallint[] := '{}';
    v_results jsonb[] := '{}';
    v_key text;
    v_reservation open_reservations%ROWTYPE;
    v_original transfers%ROWTYPE;
    v_posted bigint;
    v_pending_delta bigint;
    v_is_debit boolean;
    v_account bigint;
    v_missing bigint;
    v_shard smallint;
    v_dp bigint;
    v_cp bigint;
    v_dpend bigint;
    v_cpend bigint;
    v_seq bigint;
    v_hash bytea;
    v_after bigint;
    v_dseq bigint;
    v_dhash bytea;
    v_dafter bigint;
BEGIN
    IF n <= 8 THEN
        -- Plain assignments: cheaper than a query over the JSON for a few transfers.
        FOR i IN 1 .. n LOOP
            v_item := p_batch->'items'->(i - 1);
            v_ids[i] := (v_item->>'id')::uuid;
            v_keys[i] := v_item->>'key';
            v_phase[i] := v_item->>'phase';
            v_code[i] := v_item->>'code';
            v_memo[i] := v_item->>'memo';
            v_pending[i] := (v_item->>'pending_id')::uuid;
            v_reverses[i] := (v_item->>'reverses_id')::uuid;
            v_expires[i] := (v_item->>'expires_at')::timestamptz;
            v_digest[i] := decode(v_item->>'digest', 'hex');
            v_debit[i] := (v_item->>'debit')::bigint;
            v_credit[i] := (v_item->>'credit')::bigint;
            v_amount[i] := (v_item->>'amount')::bigint;
        END LOOP;
    ELSE
        SELECT array_agg(x.id ORDER BY x.o), array_agg(x.key ORDER BY x.o),
               array_agg(x.phase ORDER BY x.o), array_agg(x.code ORDER BY x.o),
               array_agg(x.memo ORDER BY x.o), array_agg(x.pending_id ORDER BY x.o),
               array_agg(x.reverses_id ORDER BY x.o), array_agg(x.expires_at ORDER BY x.o),
               array_agg(decode(x.digest, 'hex') ORDER BY x.o), array_agg(x.debit ORDER BY x.o),
               array_agg(x.credit ORDER BY x.o), array_agg(x.amount ORDER BY x.o)
          INTO v_ids, v_keys, v_phase, v_code, v_memo, v_pending, v_reverses, v_expires,
               v_digest, v_debit, v_credit, v_amount
          FROM ROWS FROM (jsonb_to_recordset(p_batch->'items') AS (
                   id uuid, key text, phase text, code text, memo text, pending_id uuid,
                   reverses_id uuid, expires_at timestamptz, digest text, debit bigint,
                   credit bigint, amount bigint))
               WITH ORDINALITY AS x(id, key, phase, code, memo, pending_id, reverses_id,
                                    expires_at, digest, debit, credit, amount, o);
    END IF;

    -- Lock order, always: idempotency keys, reservations by id, balance rows by (account,
    -- shard). The key locks make a second caller with the same key wait for the first to
    -- commit or roll back, whichever accounts (or shards) the two would touch.
    IF n = 1 THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(v_keys[1], 0));
    ELSE
        PERFORM pg_advisory_xact_lock(h)
           FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(v_keys) AS k
                  ORDER BY h) s;
    END IF;

    -- A replay: the caller compares the stored originals with its request. One equality probe
    -- per key: "= ANY (array)" was planned as a scan of the whole table on a database without
    -- statistics, and PL/pgSQL keeps that plan for the life of the connection.
    FOREACH v_key IN ARRAY v_keys LOOP
        IF EXISTS (SELECT 1 FROM transfers WHERE idempotency_key = v_key) THEN
            RETURN jsonb_build_object('replay', true);
        END IF;
    END LOOP;

    IF n > 1 AND array_remove(v_pending, NULL) <> '{}' THEN
        PERFORM 1 FROM open_reservations WHERE pending_id = ANY (v_pending)
         ORDER BY pending_id FOR UPDATE;
    END IF;

    -- Resolutions and reversals take their accounts, shards and amount from the transfer they
    -- name; a new transfer's shards stay NULL until its balance rows are locked.
    FOR i IN 1 .. n LOOP
        v_dshard[i] := NULL;
        v_cshard[i] := NULL;
        IF v_pending[i] IS NOT NULL THEN
            SELECT * INTO v_reservation FROM open_reservations WHERE pending_id = v_pending[i]
               FOR UPDATE;
            IF NOT FOUND THEN
                IF EXISTS (SELECT 1 FROM transfers
                            WHERE id = v_pending[i] AND phase = 'pending') THEN
                    RAISE EXCEPTION 'pending transfer already resolved'
                        USING ERRCODE = 'SA003', DETAIL = v_pending[i]::text;
                END IF;
                RAISE EXCEPTION 'pending transfer not found'
                    USING ERRCODE = 'SA002', DETAIL = v_pending[i]::text;
            END IF;
            IF v_phase[i] = 'post_pending' AND v_reservation.expires_at IS NOT NULL
               AND v_reservation.expires_at <= p_now THEN
                RAISE EXCEPTION 'pending transfer expired'
                    USING ERRCODE = 'SA004', DETAIL = v_pending[i]::text;
            END IF;
            v_debit[i] := v_reservation.debit_account_id;
            v_dshard[i] := v_reservation.debit_shard;
            v_credit[i] := v_reservation.credit_account_id;
            v_cshard[i] := v_reservation.credit_shard;
            v_amount[i] := v_reservation.amount;
        ELSIF v_reverses[i] IS NOT NULL THEN
            SELECT * INTO v_original FROM transfers WHERE id = v_reverses[i];
            IF NOT FOUND THEN
                RAISE EXCEPTION 'transfer not found'
                    USING ERRCODE = 'SA006', DETAIL = v_reverses[i]::text;
            END IF;
            IF v_original.phase NOT IN ('posted', 'post_pending') THEN
                RAISE EXCEPTION 'transfer not reversible'
                    USING ERRCODE = 'SA007', DETAIL = v_reverses[i]::text;
            END IF;
            v_debit[i] := v_original.credit_account_id;
            v_dshard[i] := v_original.credit_shard;
            v_credit[i] := v_original.debit_account_id;
            v_cshard[i] := v_original.debit_shard;
            v_amount[i] := v_original.amount;
        END IF;
    END LOOP;

    -- A new transfer's shard is its balance row's: pid % shard_count. A hot account is split
    -- into shards and each connection writes to its own, so concurrent writers do not queue on
    -- one row. The rows are locked in (account, shard) order.
    IF array_remove(v_dshard || v_cshard, NULL) = '{}' THEN
        -- Only new transfers (the usual batch): index probes, cheaper than the join below,
        -- which resolutions and reversals need for the shards they name.
        PERFORM 1 FROM account_balances b
         WHERE b.account_id = ANY (v_debit || v_credit) AND b.shard = v_pid % b.shard_count
         ORDER BY b.account_id, b.shard FOR UPDATE;
    ELSE
        PERFORM 1 FROM account_balances b
          JOIN (SELECT DISTINCT u.account_id, u.shard
                  FROM unnest(v_debit || v_credit, v_dshard || v_cshard) AS u(account_id, shard)) u
            ON b.account_id = u.account_id AND b.shard = coalesce(u.shard, v_pid % b.shard_count)
         ORDER BY b.account_id, b.shard FOR UPDATE OF b;
    END IF;

    -- A reversal is checked under the locks of both accounts it moves: a concurrent reversal of
    -- the same transfer has committed or rolled back by now, and this snapshot shows which.
    IF array_remove(v_reverses, NULL) <> '{}' THEN
        -- (Missing accounts are named first, as for any batch.)
        v_missing := ledger_first_missing_account(v_debit, v_credit);
        IF v_missing IS NOT NULL THEN
            RAISE EXCEPTION 'account not found'
                USING ERRCODE = 'SA005', DETAIL = v_missing::text;
        END IF;
        FOR i IN 1 .. n LOOP
            IF v_reverses[i] IS NOT NULL
               AND EXISTS (SELECT 1 FROM transfers WHERE reverses_id = v_reverses[i]) THEN
                RAISE EXCEPTION 'transfer already reversed'
                    USING ERRCODE = 'SA008', DETAIL = v_reverses[i]::text;
            END IF;
        END LOOP;
    END IF;

    FOR i IN 1 .. n LOOP
        v_posted := CASE v_phase[i] WHEN 'posted' THEN v_amount[i]
                                     WHEN 'post_pending' THEN v_amount[i] ELSE 0 END;
        v_pending_delta := CASE v_phase[i] WHEN 'pending' THEN v_amount[i]
                                            WHEN 'post_pending' THEN -v_amount[i]
                                            WHEN 'void_pending' THEN -v_amount[i] ELSE 0 END;
        -- The debit side, then the credit side: one statement, given the deltas of the side.
        FOREACH v_is_debit IN ARRAY ARRAY[true, false] LOOP
            IF v_is_debit THEN
                v_account := v_debit[i];
                v_shard := v_dshard[i];
                v_dp := v_posted;
                v_dpend := v_pending_delta;
                v_cp := 0;
                v_cpend := 0;
            ELSE
                v_account := v_credit[i];
                v_shard := v_cshard[i];
                v_dp := 0;
                v_dpend := 0;
                v_cp := v_posted;
                v_cpend := v_pending_delta;
            END IF;
            UPDATE account_balances
               SET debits_posted = debits_posted + v_dp,
                   credits_posted = credits_posted + v_cp,
                   debits_pending = debits_pending + v_dpend,
                   credits_pending = credits_pending + v_cpend,
                   entry_count = entry_count + 1,
                   head_hash = sha256(head_hash || v_digest[i])
             WHERE account_id = v_account AND shard = coalesce(v_shard, v_pid % shard_count)
               AND (NOT debits_must_not_exceed_credits
                    OR debits_posted + v_dp + debits_pending + v_dpend <= credits_posted + v_cp)
               AND (NOT credits_must_not_exceed_debits
                    OR credits_posted + v_cp + credits_pending + v_cpend <= debits_posted + v_dp)
            RETURNING shard, entry_count, head_hash, credits_posted - debits_posted
                 INTO v_shard, v_seq, v_hash, v_after;
            IF NOT FOUND THEN
                -- No row: an account without a balance row (the first in the order of the
                -- transfers is named), or else the side's balance rule would break.
                v_missing := ledger_first_missing_account(v_debit, v_credit);
                IF v_missing IS NOT NULL THEN
                    RAISE EXCEPTION 'account not found'
                        USING ERRCODE = 'SA005', DETAIL = v_missing::text;
                END IF;
                RAISE EXCEPTION 'insufficient funds'
                    USING ERRCODE = 'SA001', DETAIL = v_account::text;
            END IF;
            IF v_is_debit THEN
                v_dshard[i] := v_shard;
                v_dseq := v_seq;
                v_dhash := v_hash;
                v_dafter := v_after;
            ELSE
                v_cshard[i] := v_shard;
            END IF;
        END LOOP;

        INSERT INTO transfers (
            id, idempotency_key, batch_id, phase, code, memo,
            debit_account_id, debit_shard, credit_account_id, credit_shard, amount,
            pending_id, reverses_id, expires_at, created_at,
            debit_seq, debit_hash, debit_balance_after,
            credit_seq, credit_hash, credit_balance_after)
        VALUES (
            v_ids[i], v_keys[i], v_batch_id, v_phase[i], v_code[i], v_memo[i],
            v_debit[i], v_dshard[i], v_credit[i], v_cshard[i], v_amount[i],
            v_pending[i], v_reverses[i], v_expires[i], v_created,
            v_dseq, v_dhash, v_dafter, v_seq, v_hash, v_after);

        IF v_phase[i] = 'pending' THEN
            INSERT INTO open_reservations (
                pending_id, debit_account_id, debit_shard, credit_account_id, credit_shard,
                amount, expires_at)
            VALUES (v_ids[i], v_debit[i], v_dshard[i], v_credit[i], v_cshard[i],
                    v_amount[i], v_expires[i]);
        ELSIF v_pending[i] IS NOT NULL THEN
            DELETE FROM open_reservations WHERE pending_id = v_pending[i];
        END IF;

        v_results := v_results || jsonb_build_array(
            v_debit[i], v_credit[i], v_amount[i], v_dafter, v_after);
    END LOOP;

    RETURN jsonb_build_object('results', to_jsonb(v_results));
END
$fn$
"""
