#!/usr/bin/env bash
# Speed of the SQL Server database reader (issue 18), two targets:
#   1. listing the tables of a 4 MiB backup (`bak-header --tables`): under 50 ms, process
#      included; timed with hyperfine on each real fixture;
#   2. exporting a table (`bak-read --table`): at least 200 MB/s of pages on one core; timed on
#      larger backups made from the fixtures' own pages (tests/examples/big_backup.rs repeats a
#      table's leaf chain to SIZE MiB, links and counts made to agree), pinned with taskset.
#      Peers in the same run: `bak-read --stream data` of the same backup (the set's pages,
#      checked, not decoded) and `cat`; the ratios are export time / peer time (below 1: the
#      export is faster than the peer).
#
#   bash bench/tables.sh [--size MIB] [--runs N] [FIXTURES_DIR]
#
# Defaults: 256 MiB, 5 runs, ../shared/fixtures/sqlserver. Needs hyperfine and taskset; builds a
# release build. The larger backups go to bench/work/tables (gitignored).
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
SIZE=256
RUNS=5
F=$ROOT/../shared/fixtures/sqlserver
while (($#)); do
    case $1 in
    --size) SIZE=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "tables.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    *) F=$1; shift ;;
    esac
done
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
W=$BENCH/work/tables
CPU=${BENCH_CPU:-1}
die() { echo "tables.sh: $*" >&2; exit 2; }
command -v hyperfine >/dev/null || die "needs hyperfine"
command -v taskset >/dev/null || die "needs taskset"
[[ -d $F ]] || die "no fixtures at $F"
(cd "$ROOT" && cargo build --release -q -p bak-header -p bak-read -p bak-verify \
    && cargo build -q -p bak-tests --example big_backup) || die "build failed"
# The generator runs once per backup: a debug build of it (bak-tests' dependencies) will do.
GEN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/big_backup
mkdir -p "$W"

# Median wall seconds of a command, hyperfine -N.
median() {
    hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$W/h.json" "$@" >/dev/null 2>&1
    sed -n 's/.*"median": *\([0-9.e-]*\).*/\1/p' "$W/h.json" | head -1
}

echo "## 1. bak-header --tables, each fixture (hyperfine -N, warm cache; target < 50 ms at 4 MiB)"
printf '| fixture | MiB | median ms | target |\n|---|---|---|---|\n'
RUNS_SAVED=$RUNS
RUNS=30
for f in "$F"/*.bak; do
    "$BIN/bak-header" --tables "$f" >/dev/null 2>&1 || continue
    s=$(median "$BIN/bak-header --tables $f")
    mib=$(awk -v b="$(stat -c %s "$f")" 'BEGIN { printf "%.1f", b / 1048576 }')
    awk -v n="$(basename "$f")" -v m="$mib" -v s="$s" 'BEGIN {
        ms = s * 1000; printf "| %s | %s | %.1f | %s |\n", n, m, ms, (ms < 50 ? "met" : "MISSED") }'
done
RUNS=$RUNS_SAVED

echo
echo "## 2. bak-read --table on larger backups (${SIZE} MiB), one core (taskset -c $CPU)"
printf '| backup | table | pages | rows | export s | MB/s of pages | vs --stream data | vs cat | target |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for src in pubs_UGR95.bak cmp2014_sharepoint_2sets.bak; do
    [[ -f $F/$src ]] || continue
    big=$W/big-${src%.bak}-$SIZE.bak
    [[ -s $big ]] || "$GEN" "$F/$src" "$big" "$SIZE" 2>"$W/gen.log" \
        || die "big_backup $src: $(cat "$W/gen.log")"
    # The larger backup is sound: bak-verify checks every page and every table's row count.
    "$BIN/bak-verify" -q "$big" >/dev/null 2>"$W/verify.log" \
        || die "bak-verify $big failed: $(cat "$W/verify.log")"
    # The table with the most data pages (CSV: Position,Schema,Table,Rows,DataPages,...).
    read -r table rows pages < <("$BIN/bak-header" --tables --csv "$big" \
        | awk -F, 'NR > 1 { print $2 "." $3, $4, $5 }' | sort -k3,3n | tail -1)
    ex=$(median "taskset -c $CPU $BIN/bak-read -q --table $table $big")
    st=$(median "taskset -c $CPU $BIN/bak-read -q --stream data $big")
    ct=$(median "taskset -c $CPU cat $big")
    awk -v b="$(basename "$big")" -v t="$table" -v p="$pages" -v r="$rows" -v e="$ex" \
        -v s="$st" -v c="$ct" 'BEGIN {
        mbs = p * 8192 / e / 1e6
        printf "| %s | %s | %d | %d | %.3f | %.0f | %.2f | %.2f | %s |\n", b, t, p, r, e, mbs,
            e / s, e / c, (mbs >= 200 ? "met" : "MISSED") }'
done
