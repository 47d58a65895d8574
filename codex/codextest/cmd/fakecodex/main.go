// Command fakecodex runs the codextest fake of the Codex backend and its
// OAuth issuer as a standalone server for end-to-end and load tests.
//
// It listens on a loopback address only, signs in one account and prints
// a JSON line with the URLs and that account's tokens:
//
//	fakecodex -addr 127.0.0.1:8089 -events 200 -delay 5ms
//
// With -events N it serves a pre-rendered stream of N text deltas without
// parsing or validating request bodies (the bearer is still checked).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fakecodex:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("fakecodex", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "loopback listen address")
	accountID := fs.String("account", "acc-fake", "account id to sign in")
	email := fs.String("email", "fake@example.com", "account email")
	plan := fs.String("plan", "plus", "account plan type")
	scenario := fs.String("scenario", string(codextest.ScenarioText), "default scenario")
	events := fs.Int("events", 0, "serve a pre-rendered stream of N text deltas (fast mode)")
	delay := fs.Duration("delay", 0, "gap between events (fast mode and every scenario)")
	ttl := fs.Duration("access-ttl", time.Hour, "access token lifetime")
	record := fs.Bool("record", false, "keep a log of requests (grows without bound)")
	useTLS := fs.Bool("tls", false, "serve HTTPS with a self-signed certificate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return errors.New("-addr must be a loopback address: the fake hands out tokens to anyone")
	}
	if !slices.Contains(codextest.Scenarios, codextest.Scenario(*scenario)) {
		return fmt.Errorf("unknown -scenario %q; known: %v", *scenario, codextest.Scenarios)
	}
	o := codextest.Options{
		Addr:             *addr,
		TLS:              *useTLS,
		Default:          codextest.Scenario(*scenario),
		AccessTTL:        *ttl,
		EventDelay:       *delay,
		Prerendered:      *events,
		PrerenderedDelay: *delay,
		NoRecord:         !*record,
	}
	srv, err := codextest.NewServer(o)
	if err != nil {
		return err
	}
	defer srv.Close()
	tok := srv.AddAccount(*accountID, *email, *plan)
	out, _ := json.Marshal(map[string]any{
		"url":           srv.URL,
		"issuer_url":    srv.IssuerURL,
		"account_id":    *accountID,
		"access_token":  tok.AccessToken,
		"refresh_token": tok.RefreshToken,
		"id_token":      tok.IDToken,
	})
	fmt.Println(string(out))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return nil
}
