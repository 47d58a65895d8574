package api

import (
	"fmt"
	"time"
)

// Bounds of the WebSocket settings an operator may give.
const (
	// MinSocketMaxAge keeps a misconfigured age from turning every client
	// into a reconnect loop.
	MinSocketMaxAge = time.Minute
	// MinSocketPing keeps pings from becoming traffic of their own.
	MinSocketPing = time.Second
)

// ValidateSocketTimes checks Config.SocketMaxAge and Config.SocketPing as an
// operator configured them (socket_max_age, socket_ping); zero is the
// default for either. The message names the option, for the Caddyfile.
func ValidateSocketTimes(maxAge, ping time.Duration) error {
	if maxAge != 0 && maxAge < MinSocketMaxAge {
		return fmt.Errorf("socket_max_age must be at least %s, not %s", MinSocketMaxAge, maxAge)
	}
	if ping != 0 && ping < MinSocketPing {
		return fmt.Errorf("socket_ping must be at least %s, not %s", MinSocketPing, ping)
	}
	age, every := maxAge, ping
	if age == 0 {
		age = DefaultSocketMaxAge
	}
	if every == 0 {
		every = DefaultSocketPing
	}
	if every >= age {
		return fmt.Errorf("socket_ping (%s) must be shorter than socket_max_age (%s)", every, age)
	}
	return nil
}
