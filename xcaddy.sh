#!/usr/bin/env bash
# xcaddy.sh — the project's two commands (and helpers):
#   ./xcaddy.sh build   build ./caddy: Caddy with this module, via xcaddy
#   ./xcaddy.sh run     build, then run the proxy with Caddyfile.example (bbolt vault, local HTTPS)
#   ./xcaddy.sh test    the whole test suite: gofmt, go vet, go test -race (fuzz seeds included),
#                       the end-to-end checks against a freshly built ./caddy, and the bench smoke run
#   ./xcaddy.sh bench   build, then benchmark codex_proxy against stock reverse_proxy
#                       (bench-results/results.md; --smoke: the short CI run; -h: options)
set -euo pipefail
cd "$(dirname "$0")"

CADDY_VERSION=v2.11.9
XCADDY_VERSION=v0.4.5
MODULE=github.com/usemysub/caddy-codex-proxy
GOBIN_DIR="$(go env GOPATH)/bin"
export PATH="$GOBIN_DIR:$PATH"

need_xcaddy() {
	if ! command -v xcaddy >/dev/null 2>&1 || ! xcaddy version 2>/dev/null | grep -q "${XCADDY_VERSION#v}"; then
		echo "==> installing xcaddy $XCADDY_VERSION"
		go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION"
	fi
}

build() {
	need_xcaddy
	# The module proxy answers 403 (not 404) for modules it does not serve, and Go
	# only falls back to xcaddy's local replace on 404/410; "|off" turns any proxy
	# error into "not found" so the local tree is used.
	local proxy
	proxy="$(go env GOPROXY | cut -d, -f1)"
	echo "==> building ./caddy ($CADDY_VERSION + $MODULE)"
	GOPROXY="$proxy|off" xcaddy build "$CADDY_VERSION" --with "$MODULE=." --output ./caddy
	./caddy list-modules --versions 2>/dev/null | grep -q '^http.handlers.codex_proxy' || {
		echo "built caddy does not list http.handlers.codex_proxy" >&2
		exit 1
	}
}

unit() {
	echo "==> gofmt"
	local unformatted
	unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"
	if [ -n "$unformatted" ]; then
		echo "gofmt would change:" >&2
		echo "$unformatted" >&2
		exit 1
	fi
	echo "==> go vet"
	go vet ./...
	echo "==> go test -race (unit, fuzz seed corpora, golden fixtures)"
	go test -race -count=1 ./...
}

e2e() {
	echo "==> end to end: the built caddy lists the module"
	./caddy list-modules | grep -x 'http.handlers.codex_proxy'
	./caddy version
	echo "==> end to end: real caddy, fake Codex backend, real clients"
	CODEX_PROXY_CADDY="$PWD/caddy" go test -race -count=1 ./e2e/...
	echo "==> end to end: the dashboard journey in Chromium against the built caddy"
	CODEX_PROXY_CADDY="$PWD/caddy" go test -race -count=1 -run 'TestDashboardBrowserJourney' ./caddymodule/
}

cmd="${1:-}"
case "$cmd" in
build) build ;;
run)
	build
	cat >&2 <<NEXT
==> starting the proxy on https://localhost:8443 (Caddy's local CA)
    Base URL for OpenAI clients:  https://localhost:8443/v1
    Local root certificate:       ${XDG_DATA_HOME:-$HOME/.local/share}/caddy/pki/authorities/local/root.crt
    Provision a user (another terminal, while this runs):
      ./caddy codex-proxy provision --config Caddyfile.local --email you@example.com --auth-file ~/.codex/auth.json
    It prints the cpk_… key to use as the API key.
NEXT
	exec ./caddy run --config Caddyfile.local --adapter caddyfile
	;;
test)
	unit
	build
	e2e
	bench/run.sh --smoke
	;;
bench)
	shift
	build
	CODEXBENCH_COMMAND="./xcaddy.sh bench${*:+ $*}" exec bench/run.sh "$@"
	;;
*)
	echo "usage: $0 build|run|test|bench" >&2
	exit 2
	;;
esac
