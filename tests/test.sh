#!/usr/bin/env bash
# Every test: the README's test command, `cargo build --workspace && cargo test --workspace`, with
# its output streaming as usual and its exit status passed through, then which tests skipped.
# A test that cannot do its work here (no ../shared/fixtures/sqlserver, no groff, no object-store
# server installed) passes as `ok`
# but prints `SKIPPED: <test>: <why>` on stderr (tests/tests/util.rs, `skip`); this counts them.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ $# -gt 0 ]; then
  echo "usage: bash tests/test.sh (it takes no arguments; run cargo test itself for a subset)" >&2
  exit 2
fi

log=$(mktemp "${TMPDIR:-/tmp}/bak-test.XXXXXX") || exit 2
trap 'rm -f "$log"' EXIT

# Through a pipe cargo would drop its colours; keep them when stderr is a terminal.
if [ -t 2 ] && [ -z "${CARGO_TERM_COLOR:-}" ]; then
  export CARGO_TERM_COLOR=always
fi

# The object-store servers the tests start (moto, ...), installed where missing.
export BAK_TEST_SERVERS=${BAK_TEST_SERVERS:-$(realpath -m "${CARGO_TARGET_DIR:-target}")/test-servers}
bash tests/servers.sh

# stderr goes through tee, line by line as it comes, to the terminal and to the log; stdout
# is untouched.
{ cargo build --workspace && cargo test --workspace; } 2> >(tee "$log" >&2)
status=$?
# Let tee write the last lines before they are counted.
wait $! 2>/dev/null

# One line per skipped test (a test may say SKIPPED more than once), with its first reason.
skipped=$(sed -n 's/^SKIPPED: \([^ ]*\): \(.*\)$/\1\t\2/p' "$log" | sort -u -t "$(printf '\t')" -k1,1)
n=0
[ -n "$skipped" ] && n=$(printf '%s\n' "$skipped" | wc -l)
case $n in
  0) echo "no test skipped" ;;
  1) echo "1 test skipped:" ;;
  *) echo "$n tests skipped:" ;;
esac
if [ "$n" -gt 0 ]; then
  printf '%s\n' "$skipped" | while IFS=$'\t' read -r name why; do
    echo "  $name ($why)"
  done
fi
exit "$status"
