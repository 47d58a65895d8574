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
}
