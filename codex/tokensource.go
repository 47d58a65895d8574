package codex

import "context"

// TokenSource supplies the credentials of one linked ChatGPT account. The
// vault implements it per user. With force set the source must refresh
// even if its token looks valid: the upstream just answered 401.
type TokenSource interface {
	AccessToken(ctx context.Context, force bool) (token, accountID string, err error)
}

// TokenSourceFunc adapts a function to TokenSource.
type TokenSourceFunc func(ctx context.Context, force bool) (token, accountID string, err error)

// AccessToken calls f.
func (f TokenSourceFunc) AccessToken(ctx context.Context, force bool) (string, string, error) {
	return f(ctx, force)
}
