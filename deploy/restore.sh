#!/usr/bin/env bash
# Restore a Soft ATM backup made by deploy/backup.sh: the database dump into a given database, and
# the keys archive into a given folder.
#
#   deploy/restore.sh --database-url URL --dump FILE [--keys FILE --keys-dir DIR]
#
# The database must exist (createdb); whatever it holds of Soft ATM's schema is replaced
# (pg_restore --clean --if-exists), in one transaction: a failed restore changes nothing. Objects
# are owned by the user of URL (--no-owner) and no grants are restored (--no-acl). The keys are
# unpacked into DIR, which must be empty or missing: restoring old keys over newer ones would
# lose the newer signing keys. Afterwards run `softatm db-upgrade` (if the app is newer than the
# backup) and `softatm ledger verify` against the restored database.
set -euo pipefail
umask 077

usage() {
    echo "usage: $0 --database-url URL --dump FILE [--keys FILE --keys-dir DIR]" >&2
    exit 2
}

die() {
    echo "restore.sh: $*" >&2
    exit 1
}

# As in backup.sh: sets libpq_url for libpq from the app's URL, the password in PGPASSWORD.
to_libpq_url() {
    local url=$1
    if [[ $url =~ ^postgres(ql)?\+[A-Za-z0-9_]+:// ]]; then
        url="postgresql://${url#*://}"
    fi
    if [[ $url =~ ^(postgres(ql)?://)([^:@/]*):([^@/]*)@(.*)$ ]]; then
        local password=${BASH_REMATCH[4]}
        PGPASSWORD=$(printf '%b' "${password//%/\\x}")
        export PGPASSWORD
        url="${BASH_REMATCH[1]}${BASH_REMATCH[3]}@${BASH_REMATCH[5]}"
    fi
    libpq_url=$url
}

main() {
    local database_url="" dump="" keys="" keys_dir=""
    while (($# > 0)); do
        (($# >= 2)) || usage
        case $1 in
        --database-url) database_url=$2 ;;
        --dump) dump=$2 ;;
        --keys) keys=$2 ;;
        --keys-dir) keys_dir=$2 ;;
        *) usage ;;
        esac
        shift 2
    done
    [[ -n $database_url && -n $dump ]] || usage
    [[ -z $keys && -z $keys_dir ]] || [[ -n $keys && -n $keys_dir ]] || usage
    [[ -f $dump ]] || die "no dump at $dump"
    command -v pg_restore >/dev/null || die "pg_restore is missing (Debian: apt-get install postgresql-client)"

    if [[ -n $keys ]]; then
        [[ -f $keys ]] || die "no keys archive at $keys"
        if [[ -d $keys_dir ]] && [[ -n $(ls -A "$keys_dir") ]]; then
            die "$keys_dir is not empty: restore the keys into an empty folder"
        fi
        # Check the archive before touching the database: a keys archive that cannot be read
        # makes the restored database's personal data unreadable.
        tar --list --file="$keys" >/dev/null
    fi

    to_libpq_url "$database_url"
    pg_restore --clean --if-exists --no-owner --no-acl --single-transaction --exit-on-error \
        --no-password --dbname="$libpq_url" "$dump"
    echo "restore.sh: database restored from $dump"

    if [[ -n $keys ]]; then
        mkdir -p "$keys_dir"
        chmod 0700 "$keys_dir"
        tar --extract --file="$keys" --directory="$keys_dir" --no-same-owner --no-overwrite-dir
        echo "restore.sh: keys restored from $keys into $keys_dir"
    fi
}

main "$@"
