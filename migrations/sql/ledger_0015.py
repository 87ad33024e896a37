"""Database-side code of migration 0015: a hot account's shard follows the connection's slot.

`ledger_apply` as in 0014 (migrations/sql/ledger_0014.py, frozen), changed by edits that each
apply to that text exactly as often as stated.

A new transfer on a sharded (hot) account writes the shard `key % shard_count` of the row it
locks, so that connections writing at once lock different rows. The key was the backend's pid:
pids are handed out by the operating system, so two connections often fell on one shard while
others stayed idle. Nine connections whose pids fall at random on sixteen shards share one with
a chance of more than nine in ten, and two web workers that share a fee shard hold its row for
each other until their requests commit. The key is now the connection's slot: the lowest
number, from 0, that no other open connection to the database holds. So up to shard_count
connections write to shard_count different shards, and the slots of closed connections are
reused by new ones.

`ledger_shard_slot()` claims the slot the first time a connection calls `ledger_apply` and
keeps it in a session setting, so later calls read it with one expression. The claim is a
session-level advisory lock: it lasts until the connection closes, and the database releases it
whatever way the connection ends. A claim in a transaction that then rolls back loses the setting
but keeps the lock, and the next claim finds that same slot again (a session may take its own
advisory lock again). Rows are still locked by their UPDATEs: the slot only chooses which row.

Measured on the development machine, one connection, commits not waited for, medians of seven
alternating blocks of 1,500 calls against 0014: a single transfer cost the server 159 µs of CPU
against 155, a payment with its fee 219 against 219 (the noise between blocks is a few µs).
"""

from __future__ import annotations

from migrations.sql.edits import replace_each, replace_once
from migrations.sql.ledger_0014 import LEDGER_APPLY as LEDGER_APPLY_0014

# The first key of the slots' advisory locks (two int4 keys: apart from the idempotency keys'
# single bigint keys): "SATM" in ASCII.
SLOT_LOCK_CLASS = 0x5341544D
# Slots tried before falling back to the backend's pid; far more connections than a database
# serves at once.
SLOTS_MAX = 4096
SLOT_SETTING = "softatm.ledger_shard_slot"

SHARD_SLOT = f"""
CREATE OR REPLACE FUNCTION ledger_shard_slot() RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    v_slot integer := nullif(current_setting('{SLOT_SETTING}', true), '')::integer;
BEGIN
    IF v_slot IS NULL THEN
        FOR k IN 0 .. {SLOTS_MAX - 1} LOOP
            IF pg_try_advisory_lock({SLOT_LOCK_CLASS}, k) THEN
                v_slot := k;
                EXIT;
            END IF;
        END LOOP;
        v_slot := coalesce(v_slot, pg_backend_pid());
        PERFORM set_config('{SLOT_SETTING}', v_slot::text, false);
    END IF;
    RETURN v_slot;
END
$fn$;
"""

DROP_SHARD_SLOT = "DROP FUNCTION IF EXISTS ledger_shard_slot();"

_SLOT_0014 = "    v_pid integer := pg_backend_pid();\n"

_SLOT = f"""\
    -- The connection's slot (ledger_shard_slot), read from its setting once claimed.
    v_slot integer := coalesce(nullif(current_setting('{SLOT_SETTING}', true), '')::integer,
                               ledger_shard_slot());
"""

_SHARD_COMMENT_0014 = "its balance row's: pid % shard_count."
_SHARD_COMMENT = "its balance row's: slot % shard_count."

LEDGER_APPLY = replace_once(LEDGER_APPLY_0014, _SLOT_0014, _SLOT, version="0014")
LEDGER_APPLY = replace_once(LEDGER_APPLY, _SHARD_COMMENT_0014, _SHARD_COMMENT, version="0014")
LEDGER_APPLY = replace_each(LEDGER_APPLY, "v_pid %", "v_slot %", count=4, version="0014")
