#!/usr/bin/env bash
# Measures claim latency from a warm pool on the dev stack: brings up its own stack (separate
# state dir and ports), a worker, fills a pool of COUNT+WARMUP certificates, then claims them
# one by one through certpool::client and prints p50/p95/p99. Stops what it started.
#
#   bench/claims.sh [COUNT]     (default 200)
#   CERTPOOL_BENCH_PROFILE=release bench/claims.sh    (optimized build of the worker and client)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COUNT=${1:-200}
WARMUP=5
export CERTPOOL_DEV_DIR=${CERTPOOL_BENCH_DIR:-$REPO/.dev-bench}
export CERTPOOL_TEMPORAL_PORT=${CERTPOOL_TEMPORAL_PORT:-17233} CERTPOOL_TEMPORAL_UI_PORT=${CERTPOOL_TEMPORAL_UI_PORT:-18233}
export CERTPOOL_PEBBLE_PORT=${CERTPOOL_PEBBLE_PORT:-24000} CERTPOOL_PEBBLE_MGMT_PORT=${CERTPOOL_PEBBLE_MGMT_PORT:-25000}
export CERTPOOL_DNS_PORT=${CERTPOOL_DNS_PORT:-25353} CERTPOOL_NATS_PORT=${CERTPOOL_NATS_PORT:-24222}
STACK=$REPO/deploy/dev/stack.sh
CONFIG=$CERTPOOL_DEV_DIR/bench.toml
WORKER=""
cleanup() {
    [[ -n $WORKER ]] && kill -INT "$WORKER" 2>/dev/null && wait "$WORKER" 2>/dev/null || true
    "$STACK" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
PROFILE=${CERTPOOL_BENCH_PROFILE:-debug}
if [[ $PROFILE == release ]]; then
    (cd "$REPO" && cargo build --quiet --release -p certpool -p certpool-bench)
else
    (cd "$REPO" && cargo build --quiet -p certpool -p certpool-bench)
fi
BIN=${CARGO_TARGET_DIR:-$REPO/target}/$PROFILE
echo "bench/claims.sh: $PROFILE build, $COUNT claims" >&2
rm -rf "$CERTPOOL_DEV_DIR"
"$STACK" start >/dev/null
# The dev config with the regional pool sized for the run and no cluster target (pure claim path).
sed -e "s/^target_size = 20$/target_size = $((COUNT + WARMUP))/" -e 's/^target = "demo".*$//' \
    -e "s#\${CERTPOOL_DEV_DIR:-../../.dev}#$CERTPOOL_DEV_DIR#g" \
    "$REPO/deploy/examples/dev.toml" >"$CONFIG"
"$BIN/certpool" --config "$CONFIG" worker >"$CERTPOOL_DEV_DIR/logs/worker.log" 2>&1 &
WORKER=$!
"$BIN/certpool" --config "$CONFIG" pools fill --pool aws-us-east-1 --wait --timeout 15m >/dev/null
sleep 2
"$BIN/certpool-bench" claims --config "$CONFIG" --pool aws-us-east-1 --count "$COUNT" --warmup "$WARMUP"
