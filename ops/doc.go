// Package ops holds the operator's use cases of the codex_proxy vault:
// users, API keys and their policies, linked ChatGPT accounts, the sign-up
// policy of every instance on the vault, backups and migrations between
// storage engines. Each is written once, behind
// [Service], which has two implementations: [Local] works on a vault this
// process has open, [Remote] is a client of the admin API of a running
// Caddy that holds it. [AdminHandler] serves that admin API over Local, so
// both paths run the same code.
//
// The package does not import Caddy: caddymodule registers the admin
// handler with Caddy's admin server and hands the CLI a way to find the
// vault in a Caddy config.
package ops
