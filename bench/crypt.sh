#!/usr/bin/env bash
# Encryption's cost (issue 15): backup and restore with and without encryption, in the same
# run, rounds alternating the cases so that a burst of load hits all of them; median wall
# times, MB/s of the original data, and the ratio encrypted / plain (above 1 is faster).
#
#   bash bench/crypt.sh [--size 512M] [--reps N] [--cipher aes-256-gcm|chacha20-poly1305]
#
# Targets (issue 15): zstd:1 encrypted writes and restores at 0.9x or better of zstd:1 plain;
# uncompressed encrypted at 0.8x or better of uncompressed plain.
# Input: "mixed" data (a tar of /usr/share, /usr/include, /usr/lib cut to SIZE), so zstd has
# something to do. Media go to bench/work/crypt (on the disk, gitignored), the page cache warm.
set -uo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
W=$BENCH/work/crypt
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
SIZE=512M
REPS=5
CIPHER=""

while (($#)); do
    case $1 in
    --size) SIZE=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --cipher) CIPHER=$2; shift 2 ;;
    -h | --help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "crypt.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
die() { echo "crypt.sh: $*" >&2; exit 2; }
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
((REPS >= 3)) || die "--reps must be at least 3"
command -v age-keygen >/dev/null || die "age-keygen is missing (apt-get install age)"
command -v numfmt >/dev/null || die "numfmt is missing (coreutils)"

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
[[ -s $W/key.txt ]] || age-keygen -o "$W/key.txt" 2>/dev/null
REC=$(age-keygen -y "$W/key.txt")
ENC=(--recipient "$REC")
[[ -n $CIPHER ]] && ENC+=(--cipher "$CIPHER")

# case name -> command (the media file is the case's own)
declare -A CMD
for c in none zstd:1; do
    n=${c//:/}
    CMD[write-$n-plain]="$BIN/bak-write -q --format --no-sync -c $c -i $IN $W/$n-plain.bak"
    CMD[write-$n-enc]="$BIN/bak-write -q --format --no-sync -c $c ${ENC[*]} -i $IN $W/$n-enc.bak"
    CMD[read-$n-plain]="$BIN/bak-read -q $W/$n-plain.bak"
    CMD[read-$n-enc]="$BIN/bak-read -q --identity $W/key.txt $W/$n-enc.bak"
done
CASES=(write-none-plain write-none-enc write-zstd1-plain write-zstd1-enc
    read-none-plain read-none-enc read-zstd1-plain read-zstd1-enc)
declare -A T
cat "$IN" > /dev/null
for ((r = 0; r < REPS; r++)); do
    # Rotate the starting case each round.
    for ((i = 0; i < ${#CASES[@]}; i++)); do
        c=${CASES[$(((i + r) % ${#CASES[@]}))]}
        # Round 0 starts with the writes, so every restore finds its media.
        s=$(date +%s.%N)
        eval "${CMD[$c]}" > /dev/null || die "$c failed"
        e=$(date +%s.%N)
        T[$c]+="$(awk -v s="$s" -v e="$e" 'BEGIN {print e - s}') "
    done
    log "round $((r + 1)) of $REPS"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "# bench/crypt.sh, $(date -u +%FT%TZ), $(nproc) cores, $(numfmt --to=iec "$BYTES") mixed input, $REPS rounds"
echo "# cipher: ${CIPHER:-default for this CPU}; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
printf '%-18s %10s %10s\n' case "median s" "MB/s"
declare -A M
for c in "${CASES[@]}"; do
    M[$c]=$(echo "${T[$c]}" | median)
    printf '%-18s %10.3f %10.1f\n' "$c" "${M[$c]}" "$(awk -v b="$BYTES" -v t="${M[$c]}" 'BEGIN {print b / t / 1e6}')"
done
echo
printf '%-28s %8s %8s\n' "ratio (plain time / encrypted time)" value target
for op in write read; do
    for n in zstd1 none; do
        target=0.9
        [[ $n == none ]] && target=0.8
        ratio=$(awk -v p="${M[$op-$n-plain]}" -v e="${M[$op-$n-enc]}" 'BEGIN {print p / e}')
        printf '%-28s %8.2f %8s\n' "$op $n" "$ratio" "$target"
    done
done
