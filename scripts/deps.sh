#!/usr/bin/env bash
# Installs what building, testing and the demo need, from the distribution's packages.
# On Debian/Ubuntu it runs apt-get (through sudo when not root) for whatever is missing;
# elsewhere it prints the packages to install and stops.
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    libcurl4-openssl-dev libcjson-dev libyaml-dev libev-dev libwebsockets-dev libwebsockets-evlib-ev libcmocka-dev
    clang clang-format clang-tidy cppcheck libclang-rt-14-dev
    python3 python3-yaml openssl curl
    prometheus lua5.4 jq
    chromium nodejs
)
# npm installs the dashboard's pinned chart library and the browser test's driver. Node.js
# builds other than Debian's (NodeSource) bring their own npm, which Debian's would conflict with.
if ! command -v npm >/dev/null 2>&1; then
    packages+=(npm)
fi

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for p in "${packages[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [[ "$status" == "install ok installed" ]] || missing+=("$p")
    done
fi

if [[ -f /etc/debian_version ]] && command -v apt-get >/dev/null 2>&1; then
    if ((${#missing[@]})); then
        echo "deps: installing ${missing[*]}" >&2
        sudo=""
        if [[ $(id -u) -ne 0 ]]; then
            sudo="sudo"
        fi
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
else
    echo "deps: this is not a Debian or Ubuntu system; install these packages (or your" >&2
    echo "distribution's equivalents) and run again:" >&2
    echo "  ${packages[*]}" >&2
    exit 1
fi

# The Debian prometheus package starts a system service where it can; tests start their own.
if ! command -v kubectl >/dev/null 2>&1; then
    echo "deps: kubectl (v1.28 or newer) is not on PATH; e2e tests and the demo drive it." >&2
    echo "      Install it from your Kubernetes distribution and run again." >&2
    exit 1
fi
