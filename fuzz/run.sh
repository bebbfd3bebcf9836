#!/usr/bin/env bash
# Build every fuzz target and run each for SECONDS (default 30), one after another, one job
# each. Prints one line per target (executions, corpus size, verdict) and exits non-zero when
# any target finds a crash, a leak, a timeout, or an allocation over 64 MiB (no input may make
# bak-core allocate what a size field claims); the input is left under fuzz/artifacts/<target>/.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      e.g. fuzz/run.sh 30, fuzz/run.sh 600 mtf xpress
#
# JOBS=N runs N targets at a time (default 1; CI uses one per core).
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); on a stable toolchain it is run with
# RUSTC_BOOTSTRAP=1 for the sanitizer flags. Seeds come from fuzz/seed.sh, run here when the
# corpus is missing.
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:-30}
shift || true
export RUSTC_BOOTSTRAP=1
all=$(cargo fuzz list)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && mapfile -t targets <<<"$all"

cargo fuzz build || { echo "fuzz: build failed"; exit 2; }
# Run the built binaries directly: `cargo fuzz run` would rebuild before every target.
bin=target/$(rustc -vV | sed -n 's/^host: //p')/release
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}
[ -d corpus/media_header ] || ./seed.sh || { echo "fuzz: seeding failed"; exit 2; }

# Inputs that big only slow a target down; the MTF targets need room for real metadata.
max_len() {
    case $1 in
        mtf|mtf_compressed) echo 262144 ;;
        db_catalog) echo 2097152 ;;
        db_page|db_record) echo 8192 ;;
        media_family|record_stream|block_header) echo 131072 ;;
        roundtrip) echo 16384 ;;
        *) echo 4096 ;;
    esac
}

# The targets that restore, write or decode compressed SQL Server backups run bak-core's
# threads; a thread's TLS destructor record (__cxa_thread_atexit_impl, 32 bytes) still pending
# at the leak check reads as a leak.
leaks() {
    case $1 in
        roundtrip|media_family|mtf|mtf_compressed) echo 0 ;;
        *) echo 1 ;;
    esac
}

run_one() { # TARGET: run it, print its line; exit status non-zero on a finding
    local t=$1 log rc execs cov verdict
    mkdir -p "corpus/$t" "artifacts/$t"
    log=$(mktemp)
    ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=$(leaks "$t")" "$bin/$t" "corpus/$t" \
        -max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=20 -rss_limit_mb=2048 \
        -malloc_limit_mb=64 -print_final_stats=1 -detect_leaks="$(leaks "$t")" \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        verdict=ok
    else
        verdict="FAILED (exit $rc): $(grep -m1 -E 'ERROR: libFuzzer|panicked at|ERROR: AddressSanitizer' "$log" | cut -c1-160)"
        tail -40 "$log" >&2
    fi
    printf 'fuzz %-16s %10s execs in %ss, %s, corpus %s: %s\n' "$t" "${execs:-?}" "$secs" \
        "${cov:-cov: ?}" "$(ls "corpus/$t" | wc -l)" "$verdict"
    rm -f "$log"
    return $rc
}

jobs=${JOBS:-1}
failed=0
running=0
for t in "${targets[@]}"; do
    if ((running >= jobs)); then
        wait -n || failed=1
        running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
done
while ((running > 0)); do
    wait -n || failed=1
    running=$((running - 1))
done
exit $failed
