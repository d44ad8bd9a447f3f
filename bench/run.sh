#!/usr/bin/env bash
# certpool side by side with lego, certbot and a bare ACME floor, in one run, on one local CA
# (pebble, PEBBLE_VA_NOSLEEP=1) and one DNS server (BIND, RFC 2136 with TSIG); then claim
# latency, on-demand issuance, renewals, Temporal's cost from the real histories, and the expiry
# scan at 100k and 1M inventory rows. Brings up its own stack (own ports and state dir), stops
# only what it started, writes bench/results/<date>-<shortsha>.md and .svg, and exits non-zero
# if a contender did not issue all N certificates.
#
#   bench/run.sh [N]                        (default 100 certificates per contender)
#
# Environment:
#   CERTPOOL_BENCH_PROFILE    release (default) or debug build of certpool and certpool-bench
#   CERTPOOL_BENCH_PARALLEL   concurrency of certpool's fill, lego and the floor (8)
#   CERTPOOL_BENCH_CLAIMS     measured claims (500)
#   CERTPOOL_BENCH_CLAIM_RATE claims per second of the paced claim runs (10)
#   CERTPOOL_BENCH_SCAN_ROWS  inventory sizes for the scan ("100000 1000000"; "" skips it)
#   CERTPOOL_BENCH_PG_PORT    loopback port of the scan's own PostgreSQL (27454); without the
#                             Debian server under /usr/lib/postgresql the scan runs on SQLite only
#   CERTPOOL_BENCH_SWEEP      more fill concurrencies for certpool alone ("16 32"; "" for none):
#                             shows whether its fill is bound by latency or by CPU
#   CERTPOOL_BENCH_SKIP       parts to leave out: floor certpool lego certbot claims scan
#   CERTPOOL_BENCH_RESULTS    results directory (bench/results)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-100}
PAR=${CERTPOOL_BENCH_PARALLEL:-8}
CLAIMS=${CERTPOOL_BENCH_CLAIMS:-500}
CLAIM_RATE=${CERTPOOL_BENCH_CLAIM_RATE:-10}
WARMUP=5
SCAN_ROWS=${CERTPOOL_BENCH_SCAN_ROWS-100000 1000000}
SKIP=" ${CERTPOOL_BENCH_SKIP:-} "
SWEEP=${CERTPOOL_BENCH_SWEEP-16 32}
PROFILE=${CERTPOOL_BENCH_PROFILE:-release}
RESULTS=${CERTPOOL_BENCH_RESULTS:-$REPO/bench/results}
RENEWALS=3
ON_DEMAND=5

export CERTPOOL_DEV_DIR=$REPO/.bench-state
# Ports of their own, apart from the dev stack's and bench/claims.sh's defaults.
export CERTPOOL_TEMPORAL_PORT=${CERTPOOL_TEMPORAL_PORT:-27433} CERTPOOL_TEMPORAL_UI_PORT=${CERTPOOL_TEMPORAL_UI_PORT:-28433}
export CERTPOOL_PEBBLE_PORT=${CERTPOOL_PEBBLE_PORT:-27400} CERTPOOL_PEBBLE_MGMT_PORT=${CERTPOOL_PEBBLE_MGMT_PORT:-27401}
export CERTPOOL_DNS_PORT=${CERTPOOL_DNS_PORT:-27453} CERTPOOL_NATS_PORT=${CERTPOOL_NATS_PORT:-27422}
export CERTPOOL_NATS_MON_PORT=${CERTPOOL_NATS_MON_PORT:-27488}
# pebble rejects 5% of nonces on purpose; every client retries them, but they only add noise to
# a comparison.
export PEBBLE_WFE_NONCEREJECT=0
STATE=$CERTPOOL_DEV_DIR
STACK=$REPO/deploy/dev/stack.sh
TEMPORAL_CLI=$REPO/.venv/bin/temporal
RUN=$STATE/run
CONFIG=$STATE/bench.toml
ZONE=certpool.test
FILL_BASE=fill.bench.$ZONE
SANS=("$FILL_BASE" "*.$FILL_BASE" "www.$FILL_BASE")
WORKER=""
PG_PORT=${CERTPOOL_BENCH_PG_PORT:-27454}
PG_PID=""
PG_VERSION=""
T0=$SECONDS

log() { echo "bench/run.sh [$((SECONDS - T0))s]: $*" >&2; }

stop_worker() {
    if [[ -n $WORKER ]]; then
        kill -INT "$WORKER" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$WORKER" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$WORKER" 2>/dev/null || true
        wait "$WORKER" 2>/dev/null || true
        WORKER=""
    fi
}
stop_pg() {
    if [[ -n $PG_PID ]]; then
        # SIGINT is PostgreSQL's fast shutdown; SIGQUIT, its immediate one, only if that hangs.
        kill -INT "$PG_PID" 2>/dev/null || true
        for _ in $(seq 1 300); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
        kill -QUIT "$PG_PID" 2>/dev/null || true
        wait "$PG_PID" 2>/dev/null || true
        PG_PID=""
    fi
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    stop_worker
    stop_pg
    "$STACK" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

start_worker() {
    "$BIN/certpool" --config "${1:-$CONFIG}" worker >>"$STATE/logs/worker.log" 2>&1 &
    WORKER=$!
    sleep 2
    kill -0 "$WORKER" 2>/dev/null || { tail -n 20 "$STATE/logs/worker.log" >&2; log "the worker died"; exit 1; }
}

# pebble keeps everything in memory and slows down as its store grows: a fresh one per
# contender. Only the pebble of this state dir is stopped (its pid file, checked against its
# cmdline), then stack.sh starts what is missing.
restart_pebble() {
    local pid
    pid=$(cat "$STATE/pids/pebble.pid" 2>/dev/null || true)
    if [[ -n $pid ]] && tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$STATE/pebble/pebble.json"; then
        kill -TERM "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    "$STACK" start >/dev/null
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

LOAD_BEFORE=$(loadavg)
log "load average before: $LOAD_BEFORE"
"$REPO/bench/install.sh" >&2
log "building certpool and certpool-bench ($PROFILE)"
if [[ $PROFILE == release ]]; then
    (cd "$REPO" && cargo build --quiet --release -p certpool -p certpool-bench)
else
    (cd "$REPO" && cargo build --quiet -p certpool -p certpool-bench)
fi
BUILD_SECS=$((SECONDS - T0))
# The target dir is shared with other worktrees: run copies of the binaries just built.
"$STACK" stop >/dev/null 2>&1 || true
rm -rf "$STATE"
mkdir -p "$STATE/bin" "$RUN" "$RESULTS"
cp "${CARGO_TARGET_DIR:-$REPO/target}/$PROFILE/certpool" "${CARGO_TARGET_DIR:-$REPO/target}/$PROFILE/certpool-bench" "$STATE/bin/"
BIN=$STATE/bin
BENCH=$BIN/certpool-bench

log "starting the stack in $STATE"
"$STACK" start >/dev/null
TEMPORAL_PID=$(cat "$STATE/pids/temporal.pid")
TSIG_SECRET=$(cat "$STATE/bind/tsig.secret")

# $1: the claims pool's target size, $2: the file.
write_config() {
    cat >"$2" <<TOML
# Written by bench/run.sh.
[temporal]
address = "http://127.0.0.1:$CERTPOOL_TEMPORAL_PORT"
task_queue = "certpool"

[ca.pebble]
directory_url = "https://127.0.0.1:$CERTPOOL_PEBBLE_PORT/dir"
contact = ["mailto:bench@example.net"]
trusted_root = "$STATE/pebble/tls-ca.pem"
request_timeout = "15s"

[dns.bind]
type = "rfc2136"
server = "127.0.0.1:$CERTPOOL_DNS_PORT"
zone = "$ZONE."
tsig_key_name = "certpool-key."
tsig_algorithm = "hmac-sha256"
tsig_secret = { file = "$STATE/bind/tsig.secret" }
ttl = 5

[propagation]
nameservers = ["127.0.0.1:$CERTPOOL_DNS_PORT"]
timeout = "60s"
interval = "100ms"

[secrets]
type = "local"
path = "$STATE/secrets"
encryption_key = { file = "$STATE/secrets.key" }

[inventory]
type = "sqlite"
path = "$STATE/inventory.sqlite"

[issuance]
fill_concurrency = $PAR
key_algorithm = "ecdsa-p256"
issue_timeout = "5m"

[schemes.bench]
sans = ["{region}.{cloud}.$ZONE", "*.{region}.{cloud}.$ZONE", "www.{region}.{cloud}.$ZONE"]

[pools.fill]
scheme = "bench"
cloud = "bench"
region = "fill"
target_size = $N
min_remaining_lifetime = "30d"
ca = "pebble"
dns = "bind"

[pools.claims]
scheme = "bench"
cloud = "bench"
region = "claims"
target_size = $1
min_remaining_lifetime = "30d"
ca = "pebble"
dns = "bind"
TOML
for c in $SWEEP; do
    printf '\n[pools.fill%s]\nscheme = "bench"\ncloud = "bench"\nregion = "fill%s"\ntarget_size = %s\nfill_concurrency = %s\nmin_remaining_lifetime = "30d"\nca = "pebble"\ndns = "bind"\n' "$c" "$c" "$N" "$c" >>"$2"
done
for i in $(seq 1 "$ON_DEMAND"); do
    printf '\n[pools.od%s]\nscheme = "bench"\ncloud = "bench"\nregion = "od%s"\ntarget_size = 1\nmin_remaining_lifetime = "30d"\nca = "pebble"\ndns = "bind"\n' "$i" "$i" >>"$2"
done
printf '\n[renewal]\nrenew_before = "30d"\ngrace_period = "10s"\n\n[events]\nsource = "urn:certpool:bench"\n' >>"$2"
}
write_config $((CLAIMS + WARMUP)) "$CONFIG"
# The same with the claims pool's target below what it holds: claims with nothing issuing behind.
write_config 1 "$STATE/bench-norefill.toml"

# --- 1. fill contenders, each on a fresh pebble -------------------------------------------
if [[ $SKIP != *" floor "* ]]; then
    restart_pebble
    log "floor: $N certificates"
    timeout 900 "$BENCH" floor --config "$CONFIG" "${SANS[@]/#/--san=}" --count "$N" --parallel "$PAR" \
        --out "$RUN/fill-floor.json" || log "floor failed (rc $?)"
fi

if [[ $SKIP != *" certpool "* ]]; then
    restart_pebble
    start_worker
    log "certpool: $N certificates (worker pid $WORKER)"
    timeout 900 "$BENCH" certpool-fill --config "$CONFIG" --pool fill --worker-pid "$WORKER" \
        --server-pid "$TEMPORAL_PID" --temporal-cli "$TEMPORAL_CLI" --out "$RUN/fill-certpool.json" ||
        log "certpool fill failed (rc $?)"
    stop_worker
    for c in $SWEEP; do
        restart_pebble
        start_worker
        log "certpool, fill concurrency $c: $N certificates"
        timeout 900 "$BENCH" certpool-fill --config "$CONFIG" --pool "fill$c" --worker-pid "$WORKER" \
            --server-pid "$TEMPORAL_PID" --temporal-cli "$TEMPORAL_CLI" --name "certpool, fill_concurrency $c" \
            --out "$RUN/fill-certpool-c$(printf %03d "$c").json" || log "certpool fill ($c) failed (rc $?)"
        stop_worker
    done
fi

LEGO_ENV=(
    LEGO_CA_CERTIFICATES="$STATE/pebble/tls-ca.pem"
    RFC2136_NAMESERVER="127.0.0.1:$CERTPOOL_DNS_PORT" RFC2136_TSIG_KEY=certpool-key.
    RFC2136_TSIG_SECRET="$TSIG_SECRET" RFC2136_TSIG_ALGORITHM=hmac-sha256.
    RFC2136_SEQUENCE_INTERVAL=0 RFC2136_POLLING_INTERVAL=0 RFC2136_PROPAGATION_TIMEOUT=60 RFC2136_TTL=5
)
if [[ $SKIP != *" lego "* ]]; then
    restart_pebble
    LEGO_DIR=$STATE/lego
    mkdir -p "$LEGO_DIR"
    log "lego: $N certificates, $PAR at a time"
    # lego 4.9 checks propagation only against the zone's NS names on port 53, and BIND here
    # listens on a loopback port: the check is off (--dns.disable-cp), which favours lego.
    env "${LEGO_ENV[@]}" timeout 1800 "$BENCH" procs --name lego \
        --setup "lego $(dpkg-query -W -f '${Version}' lego) run, 1 then $PAR in parallel, one account, propagation check off" \
        --count "$N" --parallel "$PAR" --log-dir "$STATE/logs/lego" --out "$RUN/fill-lego.json" \
        --after-first "for l in \$(seq 1 $((PAR - 1))); do mkdir -p $LEGO_DIR/lane-\$l && cp -r $LEGO_DIR/lane-0/accounts $LEGO_DIR/lane-\$l/; done" \
        -- lego --server "https://127.0.0.1:$CERTPOOL_PEBBLE_PORT/dir" --accept-tos --email bench@example.net \
        --path "$LEGO_DIR/lane-{lane}" --dns rfc2136 --dns.resolvers "127.0.0.1:$CERTPOOL_DNS_PORT" --dns.disable-cp \
        --key-type ec256 "${SANS[@]/#/--domains=}" run || log "lego failed (rc $?)"
fi

if [[ $SKIP != *" certbot "* ]]; then
    restart_pebble
    CB=$STATE/certbot
    mkdir -p "$CB"
    (umask 077 && printf 'dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = %s\ndns_rfc2136_name = certpool-key.\ndns_rfc2136_secret = %s\ndns_rfc2136_algorithm = HMAC-SHA256\n' \
        "$CERTPOOL_DNS_PORT" "$TSIG_SECRET" >"$CB/rfc2136.ini")
    CB_ARGS=(--config-dir "$CB/config" --work-dir "$CB/work" --logs-dir "$CB/logs" --non-interactive
        --server "https://127.0.0.1:$CERTPOOL_PEBBLE_PORT/dir")
    export REQUESTS_CA_BUNDLE=$STATE/pebble/tls-ca.pem
    # The account is registered once, untimed, like lego's shared one.
    timeout 120 certbot register "${CB_ARGS[@]}" --agree-tos -m bench@example.net >"$STATE/logs/certbot-register.log" 2>&1
    log "certbot: $N certificates, one after the other"
    timeout 1800 "$BENCH" procs --name certbot \
        --setup "certbot $(dpkg-query -W -f '${Version}' certbot) certonly, sequential, dns-rfc2136, propagation 0 s" \
        --count "$N" --parallel 1 --log-dir "$STATE/logs/certbot" --out "$RUN/fill-certbot.json" \
        -- certbot certonly "${CB_ARGS[@]}" --dns-rfc2136 --dns-rfc2136-credentials "$CB/rfc2136.ini" \
        --dns-rfc2136-propagation-seconds 0 --key-type ecdsa --cert-name 'c{i}' "${SANS[@]/#/--domain=}" ||
        log "certbot failed (rc $?)"
    unset REQUESTS_CA_BUNDLE
fi

# --- 2. on-demand issuance, claims, renewals -----------------------------------------------
if [[ $SKIP != *" claims "* ]]; then
    restart_pebble
    start_worker
    ODPOOLS=()
    for i in $(seq 1 "$ON_DEMAND"); do ODPOOLS+=(--pool "od$i"); done
    log "on-demand: $ON_DEMAND issuances with fresh names"
    timeout 900 "$BENCH" on-demand --config "$CONFIG" "${ODPOOLS[@]}" --out "$RUN/ondemand.json" || log "on-demand failed"
    log "claims: filling a pool of $((CLAIMS + WARMUP))"
    timeout 1200 "$BIN/certpool" --config "$CONFIG" pools fill --pool claims --wait --timeout 15m >/dev/null
    sleep 1
    log "claims: $CLAIMS claims, the pool refilling behind them"
    timeout 900 "$BENCH" claims --config "$CONFIG" --pool claims --count "$CLAIMS" --warmup "$WARMUP" \
        --cluster-prefix refill --out "$RUN/claims-refill.json" || log "claims (refilling) failed"
    log "claims: waiting for the refill"
    timeout 1200 "$BIN/certpool" --config "$CONFIG" pools fill --pool claims --wait --timeout 15m >/dev/null
    log "claims: $CLAIMS claims at $CLAIM_RATE/s, the pool refilling behind them"
    timeout 900 "$BENCH" claims --config "$CONFIG" --pool claims --count "$CLAIMS" --warmup "$WARMUP" \
        --rate "$CLAIM_RATE" --cluster-prefix refillpaced --out "$RUN/claims-refill-paced.json" ||
        log "claims (refilling, paced) failed"
    for mode in "" paced; do
        log "claims: waiting for the refill"
        timeout 1200 "$BIN/certpool" --config "$CONFIG" pools fill --pool claims --wait --timeout 15m >/dev/null
        stop_worker
        start_worker "$STATE/bench-norefill.toml"
        if [[ -z $mode ]]; then
            log "claims: $CLAIMS claims, no refill"
            timeout 900 "$BENCH" claims --config "$CONFIG" --pool claims --count "$CLAIMS" --warmup "$WARMUP" \
                --cluster-prefix norefill --out "$RUN/claims-norefill.json" || log "claims (no refill) failed"
        else
            log "claims: $CLAIMS claims at $CLAIM_RATE/s, no refill"
            timeout 900 "$BENCH" claims --config "$CONFIG" --pool claims --count "$CLAIMS" --warmup "$WARMUP" \
                --rate "$CLAIM_RATE" --cluster-prefix norefillpaced --out "$RUN/claims-norefill-paced.json" ||
                log "claims (no refill, paced) failed"
        fi
        stop_worker
        start_worker
    done
    log "renewals: $RENEWALS operator-forced"
    for id in $("$BIN/certpool" --config "$CONFIG" certs list --pool claims --output json |
        python3 -c 'import json,sys; print("\n".join([c["id"] for c in json.load(sys.stdin) if c["state"]=="assigned"][:'"$RENEWALS"']))'); do
        timeout 300 "$BIN/certpool" --config "$CONFIG" renew "$id" --now >/dev/null 2>&1 || log "renewal of $id failed"
    done
    stop_worker
fi
log "history: reading the real histories"
timeout 900 "$BENCH" history --address "127.0.0.1:$CERTPOOL_TEMPORAL_PORT" --temporal-cli "$TEMPORAL_CLI" \
    --fill-pool fill --claims refilling=refill --claims "no refill=norefill" \
    --claims "refilling, paced=refillpaced" --claims "no refill, paced=norefillpaced" --out "$RUN/history.json" || log "history failed"

# --- 3. expiry scan at scale ----------------------------------------------------------------
# The scan's PostgreSQL: the newest Debian server, with its data directory in .bench-cache so
# that seeded inventories outlive a run, as the SQLite files there do. Stock settings, durable
# commits included, but for shared_buffers: the default 128 MB is sized for small machines, not
# for a million-row table. initdb and postgres refuse to run as root: then they run as the
# package's `postgres` user (setpriv execs, so $! is the postmaster).
start_pg() {
    local bin pg_dir
    bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -1)
    if [[ -z $bin || ! -x $bin/postgres || ! -x $bin/initdb ]]; then
        log "scan: no PostgreSQL server under /usr/lib/postgresql, the scan runs on SQLite only"
        return 1
    fi
    local as=()
    if [[ $(id -u) == 0 ]]; then
        if ! id -u postgres >/dev/null 2>&1; then
            log "scan: running as root and there is no postgres user to run PostgreSQL as: SQLite only"
            return 1
        fi
        as=(setpriv --reuid="$(id -u postgres)" --regid="$(id -g postgres)" --clear-groups)
    fi
    PG_VERSION=$("$bin/postgres" --version)
    pg_dir=$REPO/.bench-cache/pg$(basename "$(dirname "$bin")")
    if [[ ! -f $pg_dir/data/PG_VERSION ]]; then
        rm -rf "$pg_dir"
        mkdir -p "$pg_dir"
        (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$pg_dir/pwfile")
        if [[ ${#as[@]} -gt 0 ]]; then chown -R postgres:postgres "$pg_dir"; fi
        chmod 700 "$pg_dir"
        if ! timeout 300 "${as[@]}" "$bin/initdb" -D "$pg_dir/data" -U bench --pwfile="$pg_dir/pwfile" \
            --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C >"$STATE/logs/initdb.log" 2>&1; then
            tail -n 20 "$STATE/logs/initdb.log" >&2
            rm -rf "$pg_dir"
            log "scan: initdb failed, the scan runs on SQLite only"
            return 1
        fi
    fi
    "${as[@]}" "$bin/postgres" -D "$pg_dir/data" -k "$pg_dir" -h 127.0.0.1 -p "$PG_PORT" -c shared_buffers=256MB \
        >>"$STATE/logs/postgres.log" 2>&1 &
    PG_PID=$!
    for _ in $(seq 1 300); do
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
        kill -0 "$PG_PID" 2>/dev/null || break
        sleep 0.2
    done
    if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
        tail -n 20 "$STATE/logs/postgres.log" >&2
        stop_pg
        log "scan: PostgreSQL did not start, the scan runs on SQLite only"
        return 1
    fi
    # Through the environment, so the password stays out of ps.
    CERTPOOL_BENCH_PG_URL="postgres://bench:$(cat "$pg_dir/pwfile")@127.0.0.1:$PG_PORT/postgres"
    export CERTPOOL_BENCH_PG_URL
}

[[ $SKIP == *" scan "* ]] && SCAN_ROWS=""
BACKENDS=(sqlite)
if [[ -n $SCAN_ROWS ]] && start_pg; then
    log "scan: PostgreSQL ($PG_VERSION) on 127.0.0.1:$PG_PORT, pid $PG_PID"
    BACKENDS+=(postgres)
fi
for rows in $SCAN_ROWS; do
    for backend in "${BACKENDS[@]}"; do
        log "scan: $rows rows, $backend"
        if ! timeout 1800 "$BENCH" scan-seed --backend "$backend" --rows "$rows" --cache-dir "$REPO/.bench-cache"; then
            log "scan: seeding $backend with $rows rows failed"
            continue
        fi
        timeout 600 "$BENCH" scan --rows "$rows" --cache-dir "$REPO/.bench-cache" --backend "$backend" \
            --address "http://127.0.0.1:$CERTPOOL_TEMPORAL_PORT" --out "$RUN/scan-$backend-$rows.json" ||
            log "scan: $backend, $rows rows failed"
    done
done
stop_pg

# --- 4. results -----------------------------------------------------------------------------
LOAD_AFTER=$(loadavg)
SHA=$(git -C "$REPO" rev-parse --short HEAD)
NAME=$(date -u +%Y-%m-%d)-$SHA
{
    echo "date (UTC)        $(date -u '+%Y-%m-%d %H:%M')"
    echo "commit            $SHA$(git -C "$REPO" diff --quiet HEAD -- . ':!bench/results' || echo ' (with uncommitted changes)')"
    echo "command           bench/run.sh $N   (profile $PROFILE, parallel $PAR, claims $CLAIMS, scan rows: ${SCAN_ROWS:-none}${CERTPOOL_BENCH_SKIP:+, skipped: $CERTPOOL_BENCH_SKIP})"
    echo "run took          $((SECONDS - T0)) s end to end: $BUILD_SECS s build (shared target dir, other builds running), $((SECONDS - T0 - BUILD_SECS)) s stack and measurements"
    echo "cpu               $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores visible"
    echo "memory            $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel            $(uname -sr)"
    echo "load average      before $LOAD_BEFORE, after $LOAD_AFTER (1/5/15 min; the machine is shared)"
    echo "pebble            $(dpkg-query -W -f '${Version}' pebble), PEBBLE_VA_NOSLEEP=1, PEBBLE_AUTHZREUSE=100, PEBBLE_WFE_NONCEREJECT=0"
    echo "bind9             $(dpkg-query -W -f '${Version}' bind9)"
    echo "temporal          $("$TEMPORAL_CLI" --version | head -1)"
    echo "lego              $(dpkg-query -W -f '${Version}' lego)"
    echo "certbot           $(dpkg-query -W -f '${Version}' certbot), python3-certbot-dns-rfc2136 $(dpkg-query -W -f '${Version}' python3-certbot-dns-rfc2136)"
    echo "rustc             $(rustc --version)"
    if [[ -n $PG_VERSION ]]; then
        echo "postgresql        $PG_VERSION, stock settings but shared_buffers=256MB (scan only)"
    fi
} >"$RUN/machine.txt"
RC=0
"$BENCH" report --dir "$RUN" --machine "$RUN/machine.txt" --out "$RESULTS/$NAME.md" --chart "$RESULTS/$NAME.svg" \
    >/dev/null || RC=$?
log "wrote $RESULTS/$NAME.md and $RESULTS/$NAME.svg"
exit $RC
