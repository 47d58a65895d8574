#!/usr/bin/env bash
# bench/wrk.sh — the wrk cross-check of the bench: the same Caddy targets
# (b reverse_proxy, c /v1/responses, d chat stream; one process each, pinned
# with taskset to the server CPU as in the bench) loaded by wrk -t1 at 16 and
# 64 connections instead of the Go load generator. Prints req/s, CPU per
# request and the ratios to b; writes bench-results/wrk.md. Installs wrk
# (Debian package) when it is missing. Needs ./caddy (./xcaddy.sh build).
# Further arguments go to codexbench, e.g. -rounds 5 -duration 8s.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
	echo "==> installing wrk"
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get install -y wrk >/dev/null || { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; }
fi
[ -x ./caddy ] || { echo "no ./caddy: run ./xcaddy.sh build first" >&2; exit 1; }
export CODEXBENCH_COMMAND="${CODEXBENCH_COMMAND:-bench/wrk.sh $*}"
exec bench/run.sh -wrk "${WRK_CONNS:-16,64}" -wrk-script-dir "$PWD/bench/wrk" "$@"
