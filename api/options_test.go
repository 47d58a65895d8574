package api

import (
	"errors"
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
