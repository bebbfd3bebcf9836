#!/usr/bin/env bash
# Parity's cost (issue 14): `--parity 2` on 4+2 devices against the same write on 4 devices
# without parity (uncompressed and zstd:1), a restore with 2 of the 6 families missing against
# a healthy restore, and par2 (the peer) creating the same overhead (-r50: 2 of 4) over the
# same input. Rounds alternate the cases; median wall times, MB/s of the original data, ratios
# (above 1 is faster), and the peak RSS of the parity write and restore (/usr/bin/time -v)
# against the buffer pool bound.
#
#   bash bench/parity.sh [--size 256M] [--reps N]
#
# Targets (issue 14): parity write 0.8x or better of the write without; restore with 2 of 6
# missing 0.6x or better of a healthy one; memory within the pool bound.
set -uo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
W=$BENCH/work/parity
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
SIZE=256M
REPS=3

while (($#)); do
    case $1 in
    --size) SIZE=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "parity.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
die() { echo "parity.sh: $*" >&2; exit 2; }
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
((REPS >= 1)) || die "--reps must be at least 1"
command -v numfmt >/dev/null || die "numfmt is missing (coreutils)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"
HAVE_PAR2=1
command -v par2 >/dev/null || { HAVE_PAR2=0; log "par2 is missing (apt-get install par2): no peer figure"; }

log "cargo build --release -p bak-write -p bak-read"
(cd "$ROOT" && cargo build --release -q -p bak-write -p bak-read) || die "release build failed"
mkdir -p "$W"
BYTES=$(numfmt --from=iec "$SIZE")
IN=$W/mixed-$SIZE
if [[ ! -s $IN ]]; then
    log "making $IN"
    tar cf - /usr/share /usr/include /usr/lib 2>/dev/null | head -c "$BYTES" > "$IN"
fi
BYTES=$(stat -c %s "$IN")

declare -A CMD
for c in none zstd:1; do
    n=${c//:/}
    four="$W/$n-4-1 $W/$n-4-2 $W/$n-4-3 $W/$n-4-4"
    six="$W/$n-6-1 $W/$n-6-2 $W/$n-6-3 $W/$n-6-4 $W/$n-6-5 $W/$n-6-6"
    CMD[write-$n-4]="$BIN/bak-write -q --format --no-sync -c $c -i $IN $four"
    CMD[write-$n-4+2]="$BIN/bak-write -q --format --no-sync -c $c --parity 2 -i $IN $six"
    CMD[read-$n-healthy]="$BIN/bak-read -q $six"
    # Families 2 (data) and 6 (parity) missing.
    CMD[read-$n-2missing]="$BIN/bak-read -q $W/$n-6-1 $W/$n-6-3 $W/$n-6-4 $W/$n-6-5"
done
CASES=(write-none-4 write-none-4+2 write-zstd1-4 write-zstd1-4+2
    read-none-healthy read-none-2missing read-zstd1-healthy read-zstd1-2missing)
if ((HAVE_PAR2)); then
    CMD[par2-r50]="rm -f $W/in.par2 $W/in.vol*.par2; par2 create -q -q -r50 -n1 $W/in.par2 $IN"
    CASES+=(par2-r50)
fi
declare -A T
cat "$IN" > /dev/null
for ((r = 0; r < REPS; r++)); do
    for ((i = 0; i < ${#CASES[@]}; i++)); do
        c=${CASES[$(((i + r) % ${#CASES[@]}))]}
        # Round 0 in order, so every restore finds its media.
        ((r == 0)) && c=${CASES[$i]}
        s=$(date +%s.%N)
        eval "${CMD[$c]}" > /dev/null || die "$c failed"
        e=$(date +%s.%N)
        T[$c]+="$(awk -v s="$s" -v e="$e" 'BEGIN {print e - s}') "
    done
    log "round $((r + 1)) of $REPS"
done
rss() { /usr/bin/time -v bash -c "$1 > /dev/null" 2>&1 | awk -F: '/Maximum resident/ {print $2 + 0}'; }
RSS_W=$(rss "${CMD[write-zstd1-4+2]}")
RSS_R=$(rss "${CMD[read-zstd1-2missing]}")

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "# bench/parity.sh, $(date -u +%FT%TZ), $(nproc) cores, $(numfmt --to=iec "$BYTES") mixed input, $REPS rounds"
printf '%-22s %10s %10s\n' case "median s" "MB/s"
declare -A M
for c in "${CASES[@]}"; do
    M[$c]=$(echo "${T[$c]}" | median)
    printf '%-22s %10.3f %10.1f\n' "$c" "${M[$c]}" "$(awk -v b="$BYTES" -v t="${M[$c]}" 'BEGIN {print b / t / 1e6}')"
done
echo
printf '%-40s %8s %8s\n' "ratio (time without / time with)" value target
for n in none zstd1; do
    printf '%-40s %8.2f %8s\n' "write $n: 4 devices / 4+2 parity" \
        "$(awk -v a="${M[write-$n-4]}" -v b="${M[write-$n-4+2]}" 'BEGIN {print a / b}')" 0.8
    printf '%-40s %8.2f %8s\n' "restore $n: healthy / 2 of 6 missing" \
        "$(awk -v a="${M[read-$n-healthy]}" -v b="${M[read-$n-2missing]}" 'BEGIN {print a / b}')" 0.6
done
if ((HAVE_PAR2)); then
    printf '%-40s %8.2f %8s\n' "par2 create -r50 / bak-write --parity 2" \
        "$(awk -v a="${M[par2-r50]}" -v b="${M[write-none-4+2]}" 'BEGIN {print a / b}')" "-"
fi
# Pool bound of the write: (devices x 4 + 2) buffers of one block (1 MiB + framing), plus two
# stripes of parity shards (2 x K) and a scratch buffer per thread.
POOL_MIB=$(( (6 * 4 + 2) + 2 * 2 + $(nproc) ))
echo
echo "peak RSS: write zstd:1 --parity 2 ${RSS_W} KiB, restore 2 missing ${RSS_R} KiB; pool bound about ${POOL_MIB} MiB of buffers"
