#!/usr/bin/env bash
# Back up Soft ATM: the database as a pg_dump custom-format archive, and the keys folder as a tar,
# each to its own dated file (mode 0600), then remove backups older than the retention.
#
#   DATABASE_URL=postgresql://… SOFTATM_KEYS_DIR=/var/lib/softatm/keys deploy/backup.sh
#
# Environment:
#   DATABASE_URL           required; the app's URL (a "+driver" such as +psycopg is dropped)
#   SOFTATM_KEYS_DIR       required; the keys folder to archive
#   BACKUP_DIR             where the database dumps go (default /var/backups/softatm)
#   BACKUP_KEYS_DIR        where the keys archives go (default BACKUP_DIR). Keep the two apart
#                          off this host: together they decrypt the citizens' personal data.
#   BACKUP_RETENTION_DAYS  backups older than this many days are removed (default 14)
#
# None of these start with SOFTATM_ except the app's own, so they can share the app's
# environment file (the app refuses SOFTATM_ settings it does not know).
#
# Files: softatm-db-YYYYMMDDTHHMMSSZ.dump and softatm-keys-YYYYMMDDTHHMMSSZ.tar. Each is written
# under a ".partial" name and renamed when complete, so a file with the final name is whole.
# Restore with deploy/restore.sh.
set -euo pipefail
umask 077

die() {
    echo "backup.sh: $*" >&2
    exit 1
}

# Sets libpq_url for libpq, which reads "postgresql://" URLs, from the app's URL, which may name
# a driver ("postgresql+psycopg://"). The password moves from the URL to PGPASSWORD, so that it
# does not show in the process list.
to_libpq_url() {
    local url=$1
    if [[ $url =~ ^postgres(ql)?\+[A-Za-z0-9_]+:// ]]; then
        url="postgresql://${url#*://}"
    fi
    if [[ $url =~ ^(postgres(ql)?://)([^:@/]*):([^@/]*)@(.*)$ ]]; then
        local password=${BASH_REMATCH[4]}
        # Percent-decoded, as libpq would have read it in the URL.
        PGPASSWORD=$(printf '%b' "${password//%/\\x}")
        export PGPASSWORD
        url="${BASH_REMATCH[1]}${BASH_REMATCH[3]}@${BASH_REMATCH[5]}"
    fi
    libpq_url=$url
}

main() {
    local database_url keys_dir backup_dir keys_backup_dir retention_days stamp
    database_url=${DATABASE_URL:?DATABASE_URL must name the database to back up}
    keys_dir=${SOFTATM_KEYS_DIR:?SOFTATM_KEYS_DIR must name the keys folder to back up}
    backup_dir=${BACKUP_DIR:-/var/backups/softatm}
    keys_backup_dir=${BACKUP_KEYS_DIR:-$backup_dir}
    retention_days=${BACKUP_RETENTION_DAYS:-14}

    if ! [[ $retention_days =~ ^[0-9]+$ ]] || ((retention_days < 1)); then
        die "BACKUP_RETENTION_DAYS must be a whole number of days, at least 1"
    fi
    [[ -d $keys_dir ]] || die "the keys folder $keys_dir does not exist"
    command -v pg_dump >/dev/null || die "pg_dump is missing (Debian: apt-get install postgresql-client)"

    # umask 077: any folder made here is the owner's alone.
    mkdir -p "$backup_dir" "$keys_backup_dir"
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    local db_file="$backup_dir/softatm-db-$stamp.dump"
    local keys_file="$keys_backup_dir/softatm-keys-$stamp.tar"

    to_libpq_url "$database_url"
    pg_dump --format=custom --no-password --file="$db_file.partial" --dbname="$libpq_url"
    # A dump that pg_restore cannot list is not a backup.
    pg_restore --list "$db_file.partial" >/dev/null
    chmod 0600 "$db_file.partial"
    mv "$db_file.partial" "$db_file"

    # The folder's contents, without its own name, so that restore.sh can unpack them anywhere.
    tar --create --file="$keys_file.partial" --directory="$keys_dir" --numeric-owner .
    chmod 0600 "$keys_file.partial"
    mv "$keys_file.partial" "$keys_file"

    echo "backup.sh: database to $db_file"
    echo "backup.sh: keys to $keys_file"

    # Only after this run's files are complete: the newest backup is never one of those removed.
    local minutes=$((retention_days * 24 * 60))
    find "$backup_dir" "$keys_backup_dir" -maxdepth 1 -type f \
        \( -name 'softatm-db-*.dump' -o -name 'softatm-keys-*.tar' -o -name 'softatm-*.partial' \) \
        -mmin +"$minutes" -print -delete |
        sed 's/^/backup.sh: removed old /'
}

main "$@"
