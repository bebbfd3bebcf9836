#!/usr/bin/env bash
# The main job end to end: build, make sample data, write it to three devices, read it back in
# another order, compare; then the same compressed, through FIFOs.
set -euo pipefail
cd "$(dirname "$0")/.."
# The tools are built where cargo puts them: CARGO_TARGET_DIR, a target-dir in a cargo config,
# or target/. cargo metadata knows which.
target=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
if [ -z "$target" ]; then
  echo "demo: cargo metadata did not say where the target directory is" >&2
  exit 2
fi
bin=$target/release
echo "demo: building the four tools (release) into $bin; the first build takes a few minutes"
cargo build --release --workspace
for t in bak-write bak-read; do
  if [ ! -x "$bin/$t" ]; then
    echo "demo: $bin/$t is not there after the build" >&2
    exit 2
  fi
done
echo "demo: built; making 64 MiB of sample data"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Sample data: text and random bytes, 64 MiB.
{ seq 1 2000000; head -c 48M /dev/urandom; } > "$work/input"

"$bin/bak-write" --name demo "$work/a.bak" "$work/b.bak" "$work/c.bak" < "$work/input"
"$bin/bak-read" "$work/c.bak" "$work/a.bak" "$work/b.bak" | cmp - "$work/input"
echo "demo: uncompressed set on 3 devices restored byte for byte"

mkfifo "$work/f1" "$work/f2" "$work/f3"
"$bin/bak-read" "$work/f3" "$work/f1" "$work/f2" > "$work/output" &
reader=$!
"$bin/bak-write" --compress zstd:3 "$work/f1" "$work/f2" "$work/f3" < "$work/input"
wait "$reader"
cmp "$work/output" "$work/input"
echo "demo: zstd:3 set through 3 FIFOs restored byte for byte"

if command -v zstd >/dev/null 2>&1; then
  "$bin/bak-write" --quiet --compress zstd "$work/one.bak" < "$work/input"
  zstd -q -t "$work/one.bak"
  zstd -q -dc "$work/one.bak" | cmp - "$work/input"
  echo "demo: zstd -dc of a one-device set gives the input back"
fi
echo "demo: all good"
