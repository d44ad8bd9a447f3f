#!/usr/bin/env bash
# Brings up the embedded dev stack and a certpool worker, fills the example pools with visible
# progress, installs the expiry-scan schedule, claims a certificate for demo-cluster-1, waits
# for its delivery, renews it and waits for the successor's delivery, prints the status and the
# Temporal UI address, then keeps running until Ctrl-C, which stops everything this script
# started.
#
#   deploy/dev/run.sh           run until Ctrl-C
#   deploy/dev/run.sh --once    exit 0 once the pools are full and a demo cluster's certificate has
#                               been claimed, delivered, renewed and delivered again; non-zero
#                               with the reason otherwise
#
# Environment: CERTPOOL_CONFIG (default deploy/examples/dev.toml), CERTPOOL_FILL_TIMEOUT
# (default 5m), and the port variables of deploy/dev/stack.sh.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ONCE=0
case "${1:-}" in
    --once) ONCE=1 ;;
    "") ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--once]" >&2; exit 2 ;;
esac

CONFIG=${CERTPOOL_CONFIG:-$REPO/deploy/examples/dev.toml}
STACK=$REPO/deploy/dev/stack.sh
STARTED_STACK=0
WORKER_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $WORKER_PID ]] && kill -0 "$WORKER_PID" 2>/dev/null; then
        echo "run.sh: stopping the worker (pid $WORKER_PID)" >&2
        kill -INT "$WORKER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$WORKER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$WORKER_PID" 2>/dev/null || true
    fi
    # Leave a stack that was already running before this script alone.
    if [[ $STARTED_STACK == 1 ]]; then
        "$STACK" stop >&2 || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "run.sh: building certpool" >&2
(cd "$REPO" && cargo build --quiet -p certpool)
BIN=${CARGO_TARGET_DIR:-$REPO/target}/debug/certpool

if ! "$STACK" status >/dev/null 2>&1; then
    STARTED_STACK=1
fi
"$STACK" start >&2
# shellcheck disable=SC1091
source "$("$STACK" env)"

LOG=$CERTPOOL_DEV_DIR/logs/worker.log
echo "run.sh: starting a worker (log: $LOG)" >&2
"$BIN" --config "$CONFIG" worker >"$LOG" 2>&1 &
WORKER_PID=$!

set +e
"$BIN" --config "$CONFIG" pools fill --wait --timeout "${CERTPOOL_FILL_TIMEOUT:-5m}"
FILL_RC=$?
set -e
if ! kill -0 "$WORKER_PID" 2>/dev/null; then
    echo "run.sh: the worker died; last lines of $LOG:" >&2
    tail -n 20 "$LOG" >&2
    exit 1
fi

if [[ $FILL_RC == 0 ]]; then
    # The rest of the lifecycle: the expiry scan as a Temporal Schedule, one cluster that
    # claims a certificate, which ClusterSync delivers to .dev/clusters, and a renewal of that
    # certificate (forced: the dev CA's certificates are due only in two months), whose successor
    # ClusterSync delivers in turn. All of it shows in the Temporal UI.
    delivered() { # CERT: wait until every cluster of CERT is in sync
        for _ in $(seq 1 60); do
            if "$BIN" --config "$CONFIG" certs show "$1" --output json |
                python3 -c 'import json,sys; c=json.load(sys.stdin)["clusters"]; sys.exit(0 if c and all(x["in_sync"] for x in c) else 1)'; then
                return 0
            fi
            sleep 0.5
        done
        echo "run.sh: $1 was not delivered within 30 s" >&2
        return 1
    }
    "$BIN" --config "$CONFIG" schedules apply
    if CLAIM=$("$BIN" --config "$CONFIG" claim --pool aws-us-east-1 --cluster demo-cluster-1 --output json) &&
        CERT=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["cert_id"])' <<<"$CLAIM") &&
        echo "demo-cluster-1 holds certificate $CERT; waiting for ClusterSync to deliver it" &&
        delivered "$CERT" &&
        echo "delivered: $(ls "$CERTPOOL_DEV_DIR/clusters/" | tr '\n' ' ')" &&
        echo "renewing $CERT now, as the expiry scan does when a certificate is due" &&
        "$BIN" --config "$CONFIG" renew "$CERT" --now &&
        NEW=$("$BIN" --config "$CONFIG" certs show "$CERT" --output json |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["successor"] or "")') &&
        [[ -n $NEW ]] && delivered "$NEW"; then
        echo "demo-cluster-1 now holds the renewed certificate $NEW, delivered to $CERTPOOL_DEV_DIR/clusters"
        "$BIN" --config "$CONFIG" certs show "$NEW"
    else
        FILL_RC=1
        WHY="the claim, delivery or renewal of demo-cluster-1 did not complete"
    fi
fi

echo
echo "Temporal UI: $CERTPOOL_TEMPORAL_UI/namespaces/default/workflows"
echo "Inventory:   $BIN --config $CONFIG certs list"
echo "Schedules:   $BIN --config $CONFIG schedules list"
if [[ $ONCE == 1 ]]; then
    if [[ $FILL_RC != 0 ]]; then
        echo "run.sh: ${WHY:-the pools did not fill} (see above)" >&2
    fi
    exit "$FILL_RC"
fi
if [[ $FILL_RC != 0 ]]; then
    echo "run.sh: ${WHY:-the pools did not fill} (see above); the worker keeps running" >&2
fi
echo "run.sh: worker running; Ctrl-C stops everything this script started" >&2
wait "$WORKER_PID"
