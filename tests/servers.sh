#!/usr/bin/env bash
# Install the object-store servers the tests run against, where they are missing, into
# $BAK_TEST_SERVERS (default: test-servers/ in cargo's target directory). The tests start them
# on free ports of 127.0.0.1 and end them. Without a network the install fails, says so, and
# the tests that need a server skip with a visible SKIPPED line.
#   moto (S3):       a Python venv with moto[server] (and awscli, the bench's peer)
#   s3s-fs (S3):     cargo install s3s-fs@0.14.1 (checks request signatures)
#   Azurite (Azure): npm install azurite
set -uo pipefail
cd "$(dirname "$0")/.."

dir=${BAK_TEST_SERVERS:-${CARGO_TARGET_DIR:-target}/test-servers}
mkdir -p "$dir" || exit 2

if [ ! -x "$dir/moto/bin/moto_server" ]; then
  echo "servers.sh: installing moto's S3 server into $dir/moto" >&2
  if ! { python3 -m venv "$dir/moto" && "$dir/moto/bin/pip" install -q 'moto[server]' boto3 awscli; }; then
    echo "servers.sh: could not install moto; the S3 tests will skip" >&2
    rm -rf "$dir/moto"
  fi
fi

if [ ! -x "$dir/s3s-fs/bin/s3s-fs" ]; then
  echo "servers.sh: installing s3s-fs into $dir/s3s-fs (about 2 minutes)" >&2
  # Later versions need a newer rustc than the project's; its own target dir, not the project's.
  if ! cargo install -q s3s-fs@0.14.1 --locked --features binary --root "$dir/s3s-fs" \
       --target-dir "$dir/s3s-fs-build"; then
    echo "servers.sh: could not install s3s-fs; its tests will skip" >&2
  fi
  rm -rf "$dir/s3s-fs-build"
fi

if [ ! -x "$dir/azurite/node_modules/.bin/azurite-blob" ]; then
  echo "servers.sh: installing Azurite into $dir/azurite" >&2
  mkdir -p "$dir/azurite"
  if ! (cd "$dir/azurite" && npm install --no-audit --no-fund --silent azurite); then
    echo "servers.sh: could not install Azurite (npm); the Azure tests will skip" >&2
  fi
fi
exit 0
