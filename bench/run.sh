#!/usr/bin/env bash
# bench/run.sh — builds the load generator and the fake backend, raises the
# open-file limit and runs codexbench against ./caddy (build it first:
# ./xcaddy.sh bench does both). Arguments go to codexbench; --smoke is the
# short CI run. Results: bench-results/results.md (smoke: bench-results/smoke.md).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=bench-results/bin
mkdir -p "$bin"
go build -o "$bin/codexbench" ./bench/cmd/codexbench
go build -o "$bin/fakecodex" ./codex/codextest/cmd/fakecodex

# 2,000 slow streams hold ~2 descriptors each in Caddy (client + upstream)
# and one in each of the other processes.
want=65536
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$want" ]; then
	ulimit -Hn "$want" 2>/dev/null || true
fi
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || ulimit -Sn "$want" 2>/dev/null || true

args=()
for a in "$@"; do
	case "$a" in
	--smoke) args+=(-smoke) ;;
	*) args+=("$a") ;;
	esac
done
export CODEXBENCH_COMMAND="${CODEXBENCH_COMMAND:-bench/run.sh $*}"
exec "$bin/codexbench" -caddy ./caddy -fakecodex "$bin/fakecodex" ${args[@]+"${args[@]}"}
