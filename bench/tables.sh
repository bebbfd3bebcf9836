#!/usr/bin/env bash
# Speed of the SQL Server database reader (issue 18): how long `bak-header --tables` takes on
# each real fixture (the target: under 50 ms for a 4 MiB backup, process included), and how
# fast `bak-read --table` exports (the target: at least 200 MB/s of pages on one core).
#
#   bash bench/tables.sh [FIXTURES_DIR]      (default ../shared/fixtures/sqlserver)
#
# Needs hyperfine and a release build (it builds one). The export figure is bak-read's own
# summary line ("MB/s of pages"), for every table of cmp2014_sharepoint_2sets.bak and
# pubs_UGR95.bak, pinned to one core with taskset; the fixtures' tables are small (586 rows at
# most), so the figure is dominated by process start and the set's one pass: a larger backup
# (a database of a few GiB) is what the 200 MB/s target is to be measured on.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
F=${1:-$ROOT/../shared/fixtures/sqlserver}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
command -v hyperfine >/dev/null || { echo "tables.sh: needs hyperfine" >&2; exit 2; }
(cd "$ROOT" && cargo build --release -q -p bak-header -p bak-read)
echo "## bak-header --tables, each fixture (hyperfine -N, warm cache)"
for f in "$F"/*.bak; do
    "$BIN/bak-header" --tables "$f" >/dev/null 2>&1 || continue
    hyperfine -N --warmup 3 --runs 30 --style basic --export-markdown /dev/stdout \
        "$BIN/bak-header --tables $f" 2>/dev/null | tail -1
done
echo "## bak-read --table, one core"
for f in "$F/cmp2014_sharepoint_2sets.bak" "$F/pubs_UGR95.bak"; do
    "$BIN/bak-header" --tables --json "$f" | while read -r line; do
        t=$(printf '%s' "$line" | sed -n 's/.*"Schema":"\([^"]*\)","Table":"\([^"]*\)".*"Unsupported":null.*/\1.\2/p')
        [ -n "$t" ] || continue
        printf '%s %s: ' "$(basename "$f")" "$t"
        taskset -c 0 "$BIN/bak-read" --table "$t" "$f" 2>&1 >/dev/null | tail -1
    done
done
