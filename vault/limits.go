package vault

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// Limits are the operator's bounds on what the vault keeps beyond tokens
// and keys: how long, and how much. They are a config's settings (the
// Caddyfile's `responses` block), carried whole from the handler to the
// vault and applied again on every reload (Settings.Limits), so a new
// bound is one field here, its case in SetOption and its default.
//
// The zero value is every default. In JSON a duration is in nanoseconds.
type Limits struct {
	// ResponseRetention is how long a stored response is kept (default 30
	// days). A longer one applies to responses stored from then on; a
	// shorter one hides older responses at once, and the next purge (the
	// first after the vault opens or after the change) deletes them.
	ResponseRetention time.Duration `json:"response_retention,omitempty"`
	// MaxResponseBytes caps one stored response; a larger one is not kept
	// and counts as dropped (default 8 MiB).
	MaxResponseBytes int64 `json:"max_response_size,omitempty"`
	// MaxUserResponseBytes caps one user's stored responses, the oldest
	// dropped first to make room, each counted as dropped (default 256 MiB).
	MaxUserResponseBytes int64 `json:"max_user_response_size,omitempty"`
	// AuditRetention is how long audit-log entries are kept; the hourly
	// purge drops older ones (default DefaultAuditRetention, 365 days).
	AuditRetention time.Duration `json:"audit_retention,omitempty"`
}

// ErrLimits is wrapped by every error of SetOption and Validate.
var ErrLimits = errors.New("invalid storage limit")

// Upper bounds that keep a typo from meaning "unbounded".
const (
	maxLimitRecord = 1 << 30 // one stored response
	maxLimitUser   = 1 << 40 // one user's responses
)

// SetOption sets one line `name args...` of the Caddyfile block named
// block (responses or audit; a new block is a new case here and its name
// beside theirs in the glue's Caddyfile parser):
//
//	responses {
//		retention     <duration>   # 30d, 720h
//		max_size      <size>       # 8MiB
//		max_user_size <size>       # 256MiB
//	}
//	audit {
//		retention     <duration>   # 365d
//	}
//
// Errors name the block and the line, and say what it accepts.
func (l *Limits) SetOption(block, name string, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: %s %s takes one argument, not %d", ErrLimits, block, name, len(args))
	}
	arg := args[0]
	switch block + " " + name {
	case "responses retention":
		d, err := parseDays(arg)
		if err != nil || d <= 0 {
			return fmt.Errorf("%w: responses retention %q: use a positive duration such as 30d or 720h", ErrLimits, arg)
		}
		l.ResponseRetention = d
	case "responses max_size":
		n, err := parseSize(arg, maxLimitRecord)
		if err != nil {
			return fmt.Errorf("%w: responses max_size %q: %v", ErrLimits, arg, err)
		}
		l.MaxResponseBytes = n
	case "responses max_user_size":
		n, err := parseSize(arg, maxLimitUser)
		if err != nil {
			return fmt.Errorf("%w: responses max_user_size %q: %v", ErrLimits, arg, err)
		}
		l.MaxUserResponseBytes = n
	case "audit retention":
		d, err := parseDays(arg)
		if err != nil || d <= 0 {
			return fmt.Errorf("%w: audit retention %q: use a positive duration such as 365d", ErrLimits, arg)
		}
		l.AuditRetention = d
	case "audit " + name:
		return fmt.Errorf("%w: unknown audit option %q (retention)", ErrLimits, name)
	case "responses " + name:
		return fmt.Errorf("%w: unknown responses option %q (retention, max_size, max_user_size)", ErrLimits, name)
	default:
		return fmt.Errorf("%w: unknown block %q", ErrLimits, block)
	}
	return nil
}

// Validate checks the limits as a whole, defaults applied: nothing
// negative, and one response fits a user's cap (else a single response
// would overrun it, since the one being stored is never dropped).
func (l Limits) Validate() error {
	if l.ResponseRetention < 0 || l.MaxResponseBytes < 0 || l.MaxUserResponseBytes < 0 || l.AuditRetention < 0 {
		return fmt.Errorf("%w: a limit is negative", ErrLimits)
	}
	if l.MaxResponseBytes > maxLimitRecord || l.MaxUserResponseBytes > maxLimitUser {
		return fmt.Errorf("%w: responses max_size is at most 1GiB and max_user_size at most 1TiB", ErrLimits)
	}
	d := l.withDefaults()
	if d.MaxResponseBytes > d.MaxUserResponseBytes {
		return fmt.Errorf("%w: responses max_size (%s) is larger than max_user_size (%s)", ErrLimits,
			humanize.IBytes(uint64(d.MaxResponseBytes)), humanize.IBytes(uint64(d.MaxUserResponseBytes)))
	}
	return nil
}

// withDefaults fills in the zero values.
func (l Limits) withDefaults() Limits {
	if l.ResponseRetention <= 0 {
		l.ResponseRetention = DefaultResponseRetention
	}
	if l.MaxResponseBytes <= 0 {
		l.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if l.MaxUserResponseBytes <= 0 {
		l.MaxUserResponseBytes = DefaultMaxUserResponseBytes
	}
	if l.AuditRetention <= 0 {
		l.AuditRetention = DefaultAuditRetention
	}
	return l
}

// Widest is the most generous of l and o, field by field, defaults
// applied: handlers sharing a vault each get at least what they asked for,
// and nothing one of them keeps is purged for another's shorter setting.
func (l Limits) Widest(o Limits) Limits {
	l, o = l.withDefaults(), o.withDefaults()
	return Limits{
		ResponseRetention:    max(l.ResponseRetention, o.ResponseRetention),
		MaxResponseBytes:     max(l.MaxResponseBytes, o.MaxResponseBytes),
		MaxUserResponseBytes: max(l.MaxUserResponseBytes, o.MaxUserResponseBytes),
		AuditRetention:       max(l.AuditRetention, o.AuditRetention),
	}
}

// parseDays is time.ParseDuration with whole or decimal days ("30d",
// "1.5d", "1d12h") as Caddy's durations have them.
func parseDays(s string) (time.Duration, error) {
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseFloat(days, 64)
	if err != nil || n < 0 || n > 100*365 {
		return 0, fmt.Errorf("bad days %q", days)
	}
	d := time.Duration(n * float64(24*time.Hour))
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, err
		}
		d += r
	}
	return d, nil
}

// parseSize reads a size such as 8MiB, positive and at most most.
func parseSize(s string, most uint64) (int64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil || n == 0 {
		return 0, errors.New("use a positive size such as 8MiB")
	}
	if n > most {
		return 0, fmt.Errorf("at most %s", humanize.IBytes(most))
	}
	return int64(n), nil
}
