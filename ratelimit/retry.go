package ratelimit

import "time"

// Seconds is d in whole seconds rounded up, at least 1: the value of a
// Retry-After header, which must not tell a client to retry before the
// window ends.
func Seconds(d time.Duration) int64 {
	return max(1, int64((d+time.Second-1)/time.Second))
}
