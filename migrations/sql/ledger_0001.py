"""Database-side code of migration 0001, frozen with it: later revisions replace, never edit.

`ledger_apply(batch jsonb, now timestamptz)` applies a batch of linked transfers in one round trip.
It is the PostgreSQL twin of `ledger.posting._apply_portable`; the tests run both and compare them.
Errors use SQLSTATE class SA, which PostgreSQL itself never raises:

    SA001 insufficient funds (detail: account id)     SA005 account not found (detail: id)
    SA002 pending transfer not found (detail: id)     SA006 transfer not found (detail: id)
    SA003 pending already resolved (detail: id)       SA007 transfer not reversible (detail: id)
    SA004 pending transfer expired (detail: id)       SA008 transfer already reversed (detail: id)
    SA100 a write to an append-only table
"""

from __future__ import annotations

LEDGER_APPLY = r"""
CREATE FUNCTION ledger_apply(p_batch jsonb, p_now timestamptz) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
    v_batch_id uuid := (p_batch->>'batch_id')::uuid;
    v_created timestamptz := (p_batch->>'created_at')::timestamptz;
    v_items jsonb := p_batch->'items';
    n integer := jsonb_array_length(p_batch->'items');
    v_ids uuid[];
    v_keys text[];
    v_phase text[];
    v_code text[];
    v_memo text[];
    v_pending uuid[];
    v_reverses uuid[];
    v_expires timestamptz[];
    v_digest bytea[];
    v_debit bigint[];
    v_credit bigint[];
    v_amount bigint[];
    v_dshard smallint[] := '{}';
    v_cshard smallint[] := '{}';
    v_results jsonb[] := '{}';
    v_key text;
    v_reservation open_reservations%ROWTYPE;
    v_original transfers%ROWTYPE;
    v_count smallint;
    v_credit_count smallint;
    v_posted bigint;
    v_pending_delta bigint;
    v_dseq bigint;
    v_dhash bytea;
    v_dafter bigint;
    v_cseq bigint;
    v_chash bytea;
    v_cafter bigint;
BEGIN
    SELECT array_agg((e->>'id')::uuid ORDER BY o),
           array_agg(e->>'key' ORDER BY o),
           array_agg(e->>'phase' ORDER BY o),
           array_agg(e->>'code' ORDER BY o),
           array_agg(e->>'memo' ORDER BY o),
           array_agg((e->>'pending_id')::uuid ORDER BY o),
           array_agg((e->>'reverses_id')::uuid ORDER BY o),
           array_agg((e->>'expires_at')::timestamptz ORDER BY o),
           array_agg(decode(e->>'digest', 'hex') ORDER BY o),
           array_agg((e->>'debit')::bigint ORDER BY o),
           array_agg((e->>'credit')::bigint ORDER BY o),
           array_agg((e->>'amount')::bigint ORDER BY o)
      INTO v_ids, v_keys, v_phase, v_code, v_memo, v_pending, v_reverses, v_expires, v_digest,
           v_debit, v_credit, v_amount
      FROM jsonb_array_elements(v_items) WITH ORDINALITY AS x(e, o);

    -- Lock order, always: idempotency keys, reservations by id, balance rows by (account,
    -- shard). The key locks make a second caller with the same key wait for the first to
    -- commit or roll back, whichever accounts (or shards) the two would touch.
    PERFORM pg_advisory_xact_lock(h)
       FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(v_keys) AS k ORDER BY h) s;

    -- A replay: the caller compares the stored originals with its request. One equality probe
    -- per key: "= ANY (array)" was planned as a scan of the whole table on a database without
    -- statistics, and PL/pgSQL keeps that plan for the life of the connection.
    FOREACH v_key IN ARRAY v_keys LOOP
        IF EXISTS (SELECT 1 FROM transfers WHERE idempotency_key = v_key) THEN
            RETURN jsonb_build_object('replay', true);
        END IF;
    END LOOP;

    -- Only a batch that resolves reservations has any to lock (most batches resolve none).
    IF array_remove(v_pending, NULL) <> '{}' THEN
        PERFORM 1 FROM open_reservations WHERE pending_id = ANY (v_pending)
         ORDER BY pending_id FOR UPDATE;
    END IF;

    FOR i IN 1 .. n LOOP
        IF v_pending[i] IS NOT NULL THEN
            SELECT * INTO v_reservation FROM open_reservations WHERE pending_id = v_pending[i];
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
        ELSE
            -- A hot account is split into shards; each connection writes to its own shard, so
            -- concurrent writers do not queue on one row.
            SELECT max(shard_count) FILTER (WHERE id = v_debit[i]),
                   max(shard_count) FILTER (WHERE id = v_credit[i])
              INTO v_count, v_credit_count
              FROM accounts WHERE id IN (v_debit[i], v_credit[i]);
            IF v_count IS NULL THEN
                RAISE EXCEPTION 'account not found'
                    USING ERRCODE = 'SA005', DETAIL = v_debit[i]::text;
            END IF;
            IF v_credit_count IS NULL THEN
                RAISE EXCEPTION 'account not found'
                    USING ERRCODE = 'SA005', DETAIL = v_credit[i]::text;
            END IF;
            v_dshard[i] := pg_backend_pid() % v_count;
            v_cshard[i] := pg_backend_pid() % v_credit_count;
        END IF;
    END LOOP;

    PERFORM 1 FROM account_balances b
     WHERE (b.account_id, b.shard) IN (
            SELECT u.account_id, u.shard FROM unnest(v_debit || v_credit, v_dshard || v_cshard)
                AS u(account_id, shard))
     ORDER BY b.account_id, b.shard FOR UPDATE;

    -- A reversal is checked under the locks of both accounts it moves: a concurrent reversal of
    -- the same transfer has committed or rolled back by now, and this snapshot shows which.
    IF array_remove(v_reverses, NULL) <> '{}' THEN
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

        UPDATE account_balances
           SET debits_posted = debits_posted + v_posted,
               debits_pending = debits_pending + v_pending_delta,
               entry_count = entry_count + 1,
               head_hash = sha256(head_hash || v_digest[i])
         WHERE account_id = v_debit[i] AND shard = v_dshard[i]
           AND (NOT debits_must_not_exceed_credits
                OR debits_posted + v_posted + debits_pending + v_pending_delta <= credits_posted)
           AND (NOT credits_must_not_exceed_debits
                OR credits_posted + credits_pending <= debits_posted + v_posted)
        RETURNING entry_count, head_hash, credits_posted - debits_posted
             INTO v_dseq, v_dhash, v_dafter;
        IF NOT FOUND THEN
            IF NOT EXISTS (SELECT 1 FROM account_balances
                            WHERE account_id = v_debit[i] AND shard = v_dshard[i]) THEN
                RAISE EXCEPTION 'account not found'
                    USING ERRCODE = 'SA005', DETAIL = v_debit[i]::text;
            END IF;
            RAISE EXCEPTION 'insufficient funds'
                USING ERRCODE = 'SA001', DETAIL = v_debit[i]::text;
        END IF;

        UPDATE account_balances
           SET credits_posted = credits_posted + v_posted,
               credits_pending = credits_pending + v_pending_delta,
               entry_count = entry_count + 1,
               head_hash = sha256(head_hash || v_digest[i])
         WHERE account_id = v_credit[i] AND shard = v_cshard[i]
           AND (NOT credits_must_not_exceed_debits
                OR credits_posted + v_posted + credits_pending + v_pending_delta <= debits_posted)
           AND (NOT debits_must_not_exceed_credits
                OR debits_posted + debits_pending <= credits_posted + v_posted)
        RETURNING entry_count, head_hash, credits_posted - debits_posted
             INTO v_cseq, v_chash, v_cafter;
        IF NOT FOUND THEN
            IF NOT EXISTS (SELECT 1 FROM account_balances
                            WHERE account_id = v_credit[i] AND shard = v_cshard[i]) THEN
                RAISE EXCEPTION 'account not found'
                    USING ERRCODE = 'SA005', DETAIL = v_credit[i]::text;
            END IF;
            RAISE EXCEPTION 'insufficient funds'
                USING ERRCODE = 'SA001', DETAIL = v_credit[i]::text;
        END IF;

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
            v_dseq, v_dhash, v_dafter, v_cseq, v_chash, v_cafter);

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
            v_debit[i], v_credit[i], v_amount[i], v_dafter, v_cafter);
    END LOOP;

    RETURN jsonb_build_object('results', to_jsonb(v_results));
END
$fn$
"""

FORBID_CHANGE = r"""
CREATE FUNCTION ledger_forbid_change() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'ledger table % is append-only', TG_TABLE_NAME USING ERRCODE = 'SA100';
END
$fn$
"""

POSTGRESQL_UPGRADE = [
    LEDGER_APPLY,
    FORBID_CHANGE,
    "CREATE TRIGGER transfers_append_only BEFORE UPDATE OR DELETE ON transfers "
    "FOR EACH ROW EXECUTE FUNCTION ledger_forbid_change()",
    "CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON transfers "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change()",
]

POSTGRESQL_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS transfers_no_truncate ON transfers",
    "DROP TRIGGER IF EXISTS transfers_append_only ON transfers",
    "DROP FUNCTION IF EXISTS ledger_forbid_change()",
    "DROP FUNCTION IF EXISTS ledger_apply(jsonb, timestamptz)",
]

SQLITE_UPGRADE = [
    "CREATE TRIGGER transfers_no_update BEFORE UPDATE ON transfers "
    "BEGIN SELECT RAISE(ABORT, 'ledger table transfers is append-only'); END",
    "CREATE TRIGGER transfers_no_delete BEFORE DELETE ON transfers "
    "BEGIN SELECT RAISE(ABORT, 'ledger table transfers is append-only'); END",
]

SQLITE_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS transfers_no_delete",
    "DROP TRIGGER IF EXISTS transfers_no_update",
]


def upgrade_statements(dialect: str) -> list[str]:
    return POSTGRESQL_UPGRADE if dialect == "postgresql" else SQLITE_UPGRADE


def downgrade_statements(dialect: str) -> list[str]:
    return POSTGRESQL_DOWNGRADE if dialect == "postgresql" else SQLITE_DOWNGRADE
