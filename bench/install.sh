#!/usr/bin/env bash
# Installs the contenders of bench/run.sh that the dev stack does not need: lego and certbot with
# its RFC 2136 plug-in (Debian packages), plus GNU time for per-process CPU and peak RSS.
# Idempotent; like deploy/dev/install.sh, keeps packages from starting system services.
set -euo pipefail

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v lego >/dev/null 2>&1 || missing+=(lego)
command -v certbot >/dev/null 2>&1 || missing+=(certbot)
dpkg-query -W -f '${Status}' python3-certbot-dns-rfc2136 2>/dev/null | grep -q 'ok installed' ||
    missing+=(python3-certbot-dns-rfc2136)
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]} == 0)); then
    echo "bench/install.sh: lego, certbot, certbot-dns-rfc2136 and time present"
    exit 0
fi
log=$(mktemp)
policy_rc=0
# certbot's package ships a systemd timer; nothing may start outside the bench's own processes.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    as_root sh -c 'printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
    # shellcheck disable=SC2034 # read by the EXIT trap
    policy_rc=1
fi
trap 'rm -f "$log"; if ((policy_rc)); then as_root rm -f /usr/sbin/policy-rc.d; fi' EXIT
if ! as_root apt-get update -qq >"$log" 2>&1 ||
    ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >>"$log" 2>&1; then
    cat "$log" >&2
    echo "bench/install.sh: apt-get failed (see above)" >&2
    exit 1
fi
echo "bench/install.sh: installed ${missing[*]}"
