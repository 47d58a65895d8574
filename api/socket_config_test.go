package api

import (
	"strings"
	"testing"
	"time"
)

func TestValidateSocketTimes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		age, ping   time.Duration
		wantMessage string // "" : valid
	}{
		{"defaults", 0, 0, ""},
		{"both set", 10 * time.Minute, 20 * time.Second, ""},
		{"age below a minute", 30 * time.Second, 0, "socket_max_age must be at least 1m0s"},
		{"negative age", -time.Hour, 0, "socket_max_age must be at least"},
		{"ping below a second", 0, time.Millisecond, "socket_ping must be at least 1s"},
		{"ping not below age", 2 * time.Minute, 2 * time.Minute, "socket_ping (2m0s) must be shorter than socket_max_age (2m0s)"},
		{"ping above default age", 0, 2 * time.Hour, "shorter than socket_max_age (1h0m0s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateSocketTimes(tc.age, tc.ping)
			switch {
			case tc.wantMessage == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantMessage != "" && (err == nil || !strings.Contains(err.Error(), tc.wantMessage)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantMessage)
			}
		})
	}
}
