#!/usr/bin/env bash
# xcaddy.sh — the project's two commands (and helpers):
#   ./xcaddy.sh build   build ./caddy: Caddy with this module, via xcaddy
#   ./xcaddy.sh run     build, then run the proxy with Caddyfile.example (bbolt vault, local HTTPS)
#   ./xcaddy.sh test    the whole test suite: gofmt, go vet, the dependency rules, staticcheck,
#                       go test -race (fuzz seeds included), the end-to-end checks against a
#                       freshly built ./caddy, and the bench smoke run
#   ./xcaddy.sh lint    only the static part of test: gofmt, go vet, dependency rules, staticcheck
#   ./xcaddy.sh bench   build, then benchmark codex_proxy against stock reverse_proxy
#                       (bench-results/results.md; --smoke: the short CI run; -h: options)
set -euo pipefail
cd "$(dirname "$0")"

CADDY_VERSION=v2.11.9
XCADDY_VERSION=v0.4.5
STATICCHECK_VERSION=v0.8.2
MODULE=github.com/usemysub/caddy-codex-proxy
GOBIN_DIR="$(go env GOPATH)/bin"
export PATH="$GOBIN_DIR:$PATH"

need_xcaddy() {
	if ! command -v xcaddy >/dev/null 2>&1 || ! xcaddy version 2>/dev/null | grep -q "${XCADDY_VERSION#v}"; then
		echo "==> installing xcaddy $XCADDY_VERSION"
		go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION"
	fi
}

need_staticcheck() {
	# staticcheck -version prints "staticcheck 2026.2.2 (0.8.2)": the module
	# version is the part in parentheses.
	if ! command -v staticcheck >/dev/null 2>&1 || ! staticcheck -version 2>/dev/null | grep -qF "(${STATICCHECK_VERSION#v})"; then
		echo "==> installing staticcheck $STATICCHECK_VERSION"
		GOBIN="$GOBIN_DIR" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
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
	# Read the whole list first: with pipefail, grep -q exiting at the first
	# match could make list-modules die of SIGPIPE and fail the check.
	local modules
	modules="$(./caddy list-modules --versions 2>/dev/null)"
	grep -q '^http.handlers.codex_proxy' <<<"$modules" || {
		echo "built caddy does not list http.handlers.codex_proxy" >&2
		exit 1
	}
}

# forbid RULE DENY ALLOW PACKAGE...: every PACKAGE (a go list pattern) must
# not depend, directly or not, on an import path matching the regular
# expression DENY, unless it also matches ALLOW. Sets failed=1 and says which
# package pulls in what otherwise.
forbid() {
	local rule="$1" deny="$2" allow="$3" listed pkg deps hits
	shift 3
	listed="$(go list -f '{{.ImportPath}} {{join .Deps " "}}' "$@")"
	while read -r pkg deps; do
		hits="$(tr ' ' '\n' <<<"$deps" | grep -E "$deny" | grep -Ev "$allow" || true)"
		if [ -n "$hits" ]; then
			echo "dependency rule broken: $rule" >&2
			echo "  $pkg depends on:" >&2
			sed 's/^/    /' <<<"$hits" >&2
			failed=1
		fi
	done <<<"$listed"
}

# forbids_direct RULE DENY PACKAGE...: like forbid, for the packages'
# own imports only (a dependency may still use them).
forbids_direct() {
	local rule="$1" deny="$2" pkg imports hits
	shift 2
	while read -r pkg imports; do
		hits="$(tr ' ' '\n' <<<"$imports" | grep -E "$deny" || true)"
		if [ -n "$hits" ]; then
			echo "dependency rule broken: $rule" >&2
			echo "  $pkg imports:" >&2
			sed 's/^/    /' <<<"$hits" >&2
			failed=1
		fi
	done < <(go list -f '{{.ImportPath}} {{join .Imports " "}}' "$@")
}

# deps checks the package layering the README's Layout describes.
deps() {
	echo "==> dependency rules"
	local failed=0 project="^${MODULE//./\\.}/" caddy='^github\.com/caddyserver/caddy(/|$)'
	forbid "apierror is a leaf: it imports nothing of the project" \
		"$project" '^$' ./apierror/
	forbid "translate is pure: it imports nothing of the project but apierror (its errors)" \
		"$project" "^${MODULE//./\\.}/apierror\$" ./translate/
	forbid "translate/anthropic is pure: it imports nothing of the project but translate and apierror" \
		"$project" "^${MODULE//./\\.}/(translate|apierror)\$" ./translate/anthropic/
	forbid "codex does not depend on translate: the upstream client speaks the backend's protocol, not a client's dialect" \
		"${project}translate(/|\$)" '^$' ./codex/...
	forbid "vault and codex never import each other" \
		"${project}codex(/|\$)" '^$' ./vault/...
	forbid "vault and codex never import each other" \
		"${project}vault(/|\$)" '^$' ./codex/...
	forbid "engines depend on vault, not the reverse: vault imports no engine and not vault/engine" \
		"${project}vault/(bolt|postgres|engine|migrate)(/|\$)" '^$' ./vault/
	forbid "the storage engines do not import each other" \
		"${project}vault/(postgres|engine)(/|\$)" '^$' ./vault/bolt/
	forbid "the storage engines do not import each other" \
		"${project}vault/(bolt|engine)(/|\$)" '^$' ./vault/postgres/
	forbid "vault/migrate works on any vault.Store: it imports no engine" \
		"${project}vault/(bolt|postgres|engine)(/|\$)" '^$' ./vault/migrate/
	forbid "metrics reads the vault, never an engine, the upstream client or a front end" \
		"${project}(vault/(bolt|postgres|engine|migrate)|codex|api|ops|cli|dashboard|caddymodule)(/|\$)" '^$' ./metrics/
	forbid "vaultconf resolves vault settings: it depends on the vault packages, never on codex or the front ends" \
		"${project}(codex|api|dashboard|ops|cli|translate|relay|metrics)(/|\$)" '^$' ./vaultconf/
	forbid "internal/slogswap is generic: it imports nothing of the project" \
		"$project" '^$' ./internal/slogswap/
	# ./vault/... in the rules above and below covers vault/bolt,
	# vault/engine and vault/migrate too: none imports Caddy or codex.
	forbid "the /v1 pipeline and the operator use cases see the vault, never a storage engine" \
		"${project}vault/(bolt|postgres|engine)(/|\$)" '^$' ./api/ ./ops/... ./cli/...
	forbid "api is served by the glue: it imports neither the dashboard nor the operator packages" \
		"${project}(dashboard|ops|cli|caddymodule)(/|\$)" '^$' ./api/
	forbids_direct "caddymodule opens engines through vault/engine: it imports no bbolt or pgx package" \
		'^(go\.etcd\.io/bbolt|github\.com/jackc/pgx)' ./caddymodule/
	forbid "the test OpenID provider (internal/oidctest, zitadel) is for tests: the binary never contains it" \
		"^github\.com/zitadel/|${project}internal/oidctest\$" '^$' ./caddymodule/... ./dashboard/...
	forbid "internal/oidctest is a test provider: it imports nothing of the project" \
		"$project" '^$' ./internal/oidctest/
	forbid "only caddymodule (and the e2e harness) may import Caddy" \
		"$caddy" '^$' ./api/ ./apierror/ ./certstore/ ./claims/ ./translate/ ./vault/... ./codex/... ./dashboard/... ./ratelimit/... ./relay/ ./keypolicy/ ./ops/... ./cli/... ./metrics/ ./vaultconf/ ./internal/slogswap/ ./internal/oidctest/
	if [ "$failed" -ne 0 ]; then
		echo "the package layering is broken; see docs/architecture.md#dependency-rules" >&2
		exit 1
	fi
}

lint() {
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
	deps
	need_staticcheck
	echo "==> staticcheck $STATICCHECK_VERSION"
	staticcheck ./...
}

unit() {
	lint
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
lint) lint ;;
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
	echo "usage: $0 build|run|test|lint|bench" >&2
	exit 2
	;;
esac
