#!/usr/bin/env bash
# Build the seed corpora of every fuzz target under fuzz/corpus/<target>/ (gitignored): bak
# media written by bak-core, synthetic MTF media, and the real SQL Server fixtures from
# ../shared/fixtures/sqlserver/ when present (FIXTURES=dir to use another place).
set -euo pipefail
cd "$(dirname "$0")"
fixtures=${FIXTURES:-../../shared/fixtures/sqlserver}
cargo run --quiet --release --example seeds -- corpus "$fixtures"
