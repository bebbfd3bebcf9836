#!/usr/bin/env bash
# Install the object-store servers the tests run against, where they are missing, into
# $BAK_TEST_SERVERS (default: test-servers/ in cargo's target directory). The tests start them
# on free ports of 127.0.0.1 and end them. Without a network the install fails, says so, and
# the tests that need a server skip with a visible SKIPPED line.
#   moto (S3):  a Python venv with moto[server] (and awscli, the bench's peer)
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
