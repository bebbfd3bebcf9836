#!/usr/bin/env bash
# Object storage (issue 16): a backup to and a restore from a local S3 server (moto or s3s-fs,
# on 127.0.0.1), against the aws CLI on the same server in the same run: `aws s3 cp -
# s3://...` and back. Rounds alternate bak and aws; medians; ratio = aws time / bak time (above
# 1: bak is faster). Writes bench/STORE-RESULTS.md.
#
#   bash bench/store.sh [--server moto|s3s-fs] [--size 1G] [--reps 3] [--bin DIR] [--out FILE]
#
#   --server S   moto (default: Python, objects in memory; every ranged GET copies the whole
#                object, so fewer, larger GETs win) or s3s-fs (Rust, objects in files under
#                bench/work, ranges read from the file)
#   --size SIZE  input size (default 1G), random bytes
#   --reps N     rounds (default 3)
#   --bin DIR    where bak-write and bak-read are (default: a release build in
#                ${CARGO_TARGET_DIR:-target}/release, built here)
#   --out FILE   the report (default bench/STORE-RESULTS.md)
#
# moto, s3s-fs and the aws CLI come from tests/servers.sh (under the target directory). moto
# keeps objects in memory: the machine needs about 3 x SIZE free; s3s-fs needs 3 x SIZE of
# disk under bench/work/. Everything else it makes goes there too.
set -uo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
W=$BENCH/work
SIZE=1G
REPS=3
SERVER=moto
BIN=""
# bak's defaults for URL devices (bak-store's constants), as the report states them.
BAK_DEFAULTS="8 MiB parts, 4 in flight; reads: 4 ranged GETs in flight, 1 MiB growing to 16 MiB"
OUT=$BENCH/STORE-RESULTS.md
ARGS="$*"
while (($#)); do
    case $1 in
    --server) SERVER=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h | --help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "store.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { echo "store.sh: $*" >&2; exit 2; }
((REPS >= 1)) || die "--reps must be at least 1"
case $SERVER in moto | s3s-fs) ;; *) die "--server: moto or s3s-fs" ;; esac

TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
export BAK_TEST_SERVERS=${BAK_TEST_SERVERS:-$TARGET/test-servers}
bash "$ROOT/tests/servers.sh"
V=$BAK_TEST_SERVERS/moto/bin
[ -x "$V/moto_server" ] && [ -x "$V/aws" ] || die "moto and the aws CLI are not installed ($V)"
if [ -z "$BIN" ]; then
    log "building the release binaries"
    (cd "$ROOT" && cargo build --release -q -p bak-write -p bak-read) || die "build failed"
    BIN=$TARGET/release
fi

mkdir -p "$W"
exec 9>"$W/store.lock"
flock -n 9 || die "another store.sh is running"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT AWS_ALLOW_HTTP=true AWS_PAGER=""
if [ "$SERVER" = moto ]; then
    "$V/moto_server" -H 127.0.0.1 -p "$PORT" >"$W/server.log" 2>&1 &
    SRV_VERSION="moto $("$V/pip" show moto 2>/dev/null | sed -n 's/^Version: //p')"
else
    S3S=$BAK_TEST_SERVERS/s3s-fs/bin/s3s-fs
    [ -x "$S3S" ] || die "s3s-fs is not installed ($S3S)"
    rm -rf "$W/s3s-root" && mkdir -p "$W/s3s-root/bench"
    "$S3S" --host 127.0.0.1 --port "$PORT" --access-key "$AWS_ACCESS_KEY_ID" \
        --secret-key "$AWS_SECRET_ACCESS_KEY" "$W/s3s-root" >"$W/server.log" 2>&1 &
    SRV_VERSION="s3s-fs $("$S3S" --version 2>/dev/null | awk '{print $NF}')"
fi
SRV=$!
trap 'kill $SRV 2>/dev/null; rm -rf "$W/store-input" "$W/s3s-root"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
if [ "$SERVER" = moto ]; then
    "$V/aws" s3 mb s3://bench >/dev/null || die "cannot create the bucket"
fi

log "making $SIZE of random input"
head -c "$(numfmt --from=iec "$SIZE")" /dev/urandom >"$W/store-input"
BYTES=$(stat -c %s "$W/store-input")

# Seconds a command takes (its output to /dev/null); a failure ends the run.
t() {
    local s e
    s=$(date +%s.%N)
    "$@" >/dev/null || die "failed: $*"
    e=$(date +%s.%N)
    echo "$e - $s" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -a BW AW BR AR
for r in $(seq "$REPS"); do
    log "round $r of $REPS"
    # t runs in a subshell: its failure ends the run here.
    x=$(t "$BIN/bak-write" -q --format --no-sync -i "$W/store-input" s3://bench/bak.bak) || exit 2
    BW+=("$x")
    x=$(t sh -c "\"$V/aws\" s3 cp --only-show-errors - s3://bench/aws.bin < \"$W/store-input\"") || exit 2
    AW+=("$x")
    x=$(t sh -c "\"$BIN/bak-read\" -q s3://bench/bak.bak > /dev/null") || exit 2
    BR+=("$x")
    x=$(t sh -c "\"$V/aws\" s3 cp --only-show-errors s3://bench/aws.bin - > /dev/null") || exit 2
    AR+=("$x")
done
bw=$(printf '%s\n' "${BW[@]}" | median); aw=$(printf '%s\n' "${AW[@]}" | median)
br=$(printf '%s\n' "${BR[@]}" | median); ar=$(printf '%s\n' "${AR[@]}" | median)
mbs() { echo "$BYTES / $1 / 1000000" | bc -l | xargs printf '%.0f'; }
ratio() { echo "$2 / $1" | bc -l | xargs printf '%.2f'; }
{
    echo "# Object storage: bak against the aws CLI on one local S3 server"
    echo
    echo "Run of $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(numfmt --to=iec "$BYTES") of random bytes, $REPS rounds, medians; server $SRV_VERSION, $("$V/aws" --version 2>&1 | cut -d' ' -f1). bak: one family, its defaults ($BAK_DEFAULTS); aws: its defaults (8 MiB parts, 10 requests at once). Binaries: $BIN."
    echo
    echo "| case | bak | aws CLI | ratio (aws / bak) |"
    echo "|---|---|---|---|"
    echo "| backup to S3 | $(printf %.2f "$bw") s, $(mbs "$bw") MB/s | $(printf %.2f "$aw") s, $(mbs "$aw") MB/s | $(ratio "$bw" "$aw")x |"
    echo "| restore from S3 | $(printf %.2f "$br") s, $(mbs "$br") MB/s | $(printf %.2f "$ar") s, $(mbs "$ar") MB/s | $(ratio "$br" "$ar")x |"
    echo
    echo "Rounds (s): bak-write ${BW[*]}; aws cp up ${AW[*]}; bak-read ${BR[*]}; aws cp down ${AR[*]}."
    echo
    echo "Reproduce: \`bash bench/store.sh $ARGS\`"
} >"$OUT"
cat "$OUT"
