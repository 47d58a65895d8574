package api

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestOptionsSetOption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		quota   bool   // exposeQuota after a successful set
		wantErr string // a substring of the error; "" for none
		unknown bool   // the error wraps ErrUnknownOption
	}{
		{name: "expose_account_quota", args: []string{"off"}, quota: false},
		{name: "expose_account_quota", args: []string{"on"}, quota: true},
		{name: "expose_account_quota", args: []string{"yes"}, wantErr: "on or off"},
		{name: "expose_account_quota", args: nil, wantErr: "on or off"},
		{name: "no_such_option", args: []string{"x"}, wantErr: `unrecognized subdirective "no_such_option"`, unknown: true},
	} {
		var o Options
		err := o.SetOption(tc.name, tc.args)
		if tc.wantErr == "" {
			if err != nil || o.exposeQuota() != tc.quota {
				t.Errorf("%s %v: err %v, exposeQuota %v", tc.name, tc.args, err, o.exposeQuota())
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.Is(err, ErrUnknownOption) != tc.unknown {
			t.Errorf("%s %v: err %v, want %q (unknown %v)", tc.name, tc.args, err, tc.wantErr, tc.unknown)
		}
	}
	if !(Options{}).exposeQuota() {
		t.Error("the zero Options hides the account quota; the default is on")
	}
	for _, tc := range []struct {
		args []string
		on   bool
		bad  bool
	}{{[]string{"off"}, false, false}, {[]string{"on"}, true, false}, {[]string{"no"}, false, true}, {nil, false, true}} {
		var o Options
		err := o.SetOption("upstream_socket", tc.args)
		if (err != nil) != tc.bad || (!tc.bad && o.upstreamSocket() != tc.on) {
			t.Errorf("upstream_socket %v: err %v, on %v", tc.args, err, o.upstreamSocket())
		}
	}
	if !(Options{}).upstreamSocket() {
		t.Error("the zero Options turns the upstream socket off; the default is on")
	}
}

func TestOptionsServiceTier(t *testing.T) {
	var o Options
	for _, args := range [][]string{{"gpt-5.5", "priority"}, {"gpt-5.4", "Fast"}, {"gpt-5.3-codex", "default"}} {
		if err := o.SetOption("service_tier", args); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	want := map[string]string{"gpt-5.5": "priority", "gpt-5.4": "priority", "gpt-5.3-codex": "default"}
	if fmt.Sprint(o.ServiceTiers) != fmt.Sprint(want) {
		t.Fatalf("ServiceTiers %v, want %v", o.ServiceTiers, want)
	}
	if !o.Repeatable("service_tier") || o.Repeatable("expose_account_quota") {
		t.Error("service_tier must repeat, expose_account_quota not")
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"gpt-5.5", "priority"}, "more than once"},
		{[]string{"gpt-5.2", "flex"}, `priority (the Fast tier) or default, not "flex"`},
		{[]string{"gpt-5.2"}, "a model and a tier"},
		{nil, "a model and a tier"},
	} {
		if err := o.SetOption("service_tier", tc.args); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.wantErr)
		}
	}
	if err := o.SetOption("client_version", []string{"0.180.1"}); err != nil || o.ClientVersion != "0.180.1" {
		t.Fatalf("client_version: %v %q", err, o.ClientVersion)
	}
	for _, bad := range [][]string{{"latest"}, {"0..1"}, {"1.2.3.4.5"}, {}, {"0.1", "0.2"}} {
		if err := o.SetOption("client_version", bad); err == nil || !strings.Contains(err.Error(), "client_version takes one version") {
			t.Errorf("client_version %q: %v", bad, err)
		}
	}
	if err := (Options{ClientVersion: "v1"}).Validate(); err == nil {
		t.Error("Validate accepted client_version v1")
	}
	// A JSON config is not parsed by SetOption.
	bad := Options{ServiceTiers: map[string]string{"gpt-5.5": "fast"}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "gpt-5.5") {
		t.Errorf("Validate accepted tier fast in JSON: %v", err)
	}
}
