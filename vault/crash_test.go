//go:build unix

package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/claims"
)

// tokenServer is a tiny OAuth token endpoint whose refresh tokens rotate:
// each works once, reuse answers 400 refresh_token_reused.
type tokenServer struct {
	*httptest.Server
	mu     sync.Mutex
	valid  map[string]bool
	n      int
	reused int
	served int
}

func newTokenServer(t *testing.T, initial string) *tokenServer {
	ts := &tokenServer{valid: map[string]bool{initial: true}}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	rt := r.PostFormValue("refresh_token")
	w.Header().Set("Content-Type", "application/json")
	if !ts.valid[rt] {
		ts.reused++
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"refresh_token_reused","error_description":"Your refresh token has already been used"}`)
		return
	}
	delete(ts.valid, rt)
	ts.n++
	ts.served++
	next := fmt.Sprintf("srv-rt-%d", ts.n)
	ts.valid[next] = true
	exp := time.Now().Add(time.Hour)
	json.NewEncoder(w).Encode(map[string]any{
		"access_token":  accessJWT("acc-1", exp) + fmt.Sprintf("-srv-%d", ts.n),
		"refresh_token": next,
		"id_token":      claims.Encode(claims.Claims{AccountID: "acc-1", PlanType: "plus", Expiry: exp}),
		"expires_in":    3600,
	})
}

// counts returns (refreshes served, reuse attempts).
func (ts *tokenServer) counts() (int, int) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.served, ts.reused
}

// httpRefresher is a minimal Refresher speaking to a token endpoint.
type httpRefresher struct{ url string }

// tokenEndpointErr is the endpoint's error answer.
type tokenEndpointErr struct {
	status int
	code   string
}

func (e *tokenEndpointErr) Error() string {
	return fmt.Sprintf("token endpoint: HTTP %d %s", e.status, e.code)
}

func (e *tokenEndpointErr) Permanent() bool {
	return e.status == http.StatusUnauthorized || strings.HasPrefix(e.code, "refresh_token_")
}

func (h httpRefresher) Refresh(ctx context.Context, rt string) (RefreshedTokens, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, strings.NewReader(form.Encode()))
	if err != nil {
		return RefreshedTokens{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return RefreshedTokens{}, err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
		ExpiresIn    int    `json:"expires_in"`
		Error        string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return RefreshedTokens{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return RefreshedTokens{}, &tokenEndpointErr{resp.StatusCode, body.Error}
	}
	return RefreshedTokens{
		AccessToken: body.AccessToken, RefreshToken: body.RefreshToken, IDToken: body.IDToken,
		ExpiresIn: time.Duration(body.ExpiresIn) * time.Second,
	}, nil
}

// Environment of the crash child.
const (
	envCrashPoint = "VAULT_CRASH_POINT"
	envCrashDB    = "VAULT_CRASH_DB"
	envCrashURL   = "VAULT_CRASH_URL"
	envCrashUser  = "VAULT_CRASH_USER"
)

// TestCrashChild is the process TestCrashDuringRefresh kills; it does
// nothing when run normally.
func TestCrashChild(t *testing.T) {
	point := os.Getenv(envCrashPoint)
	if point == "" {
		t.Skip("helper process for TestCrashDuringRefresh")
	}
	v, err := openFile(os.Getenv(envCrashDB), Options{
		EncryptionKeys: []string{testKey1},
		Pepper:         testPepper,
		Refresher:      httpRefresher{os.Getenv(envCrashURL)},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(2)
	}
	die := func() {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	switch point {
	case "after-response":
		v.testHookAfterRefresh = die
	case "after-persist":
		v.testHookAfterPersist = die
	}
	_, _, err = v.AccessToken(context.Background(), os.Getenv(envCrashUser), false)
	fmt.Fprintln(os.Stderr, "child: survived the crash point:", err)
	os.Exit(3)
}

// TestCrashDuringRefresh kills a process mid-refresh and checks that the
// file is never left with a spent refresh token it believes in: either the
// stored token still works, or the user is cleanly marked re-link-needed.
func TestCrashDuringRefresh(t *testing.T) {
	if os.Getenv(envCrashPoint) != "" {
		t.Skip("inside the child")
	}
	for _, tc := range []struct {
		point      string
		wantRelink bool // killed before the rotated token reached the disk
	}{
		{point: "after-response", wantRelink: true},
		{point: "after-persist"},
	} {
		t.Run(tc.point, func(t *testing.T) {
			srv := newTokenServer(t, "rt-0")
			path := filepath.Join(t.TempDir(), "vault.db")
			opts := Options{EncryptionKeys: []string{testKey1}, Pepper: testPepper, Refresher: httpRefresher{srv.URL}}
			v, err := openFile(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			u := mustUser(t, v, "alice@example.com")
			if err := v.PutTokens(u.ID, bundle("rt-0", time.Now().Add(-time.Minute))); err != nil {
				t.Fatal(err)
			}
			v.Close()

			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), envCrashPoint+"="+tc.point, envCrashDB+"="+path,
				envCrashURL+"="+srv.URL, envCrashUser+"="+u.ID)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("child did not die: %v\n%s", err, out)
			}
			if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed at the crash point: %v\n%s", err, out)
			}
			if served, _ := srv.counts(); served != 1 {
				t.Fatalf("token server served %d refreshes before the crash, want 1", served)
			}

			v2 := openAt(t, path, opts)
			_, _, err = v2.AccessToken(context.Background(), u.ID, false)
			if tc.wantRelink {
				wantErr(t, err, ErrRelinkNeeded)
				info, ierr := v2.TokenInfo(u.ID)
				if ierr != nil || !info.RelinkNeeded {
					t.Fatalf("relink not persisted: %+v %v", info, ierr)
				}
				return
			}
			if err != nil {
				t.Fatalf("after the crash: %v", err)
			}
			if served, _ := srv.counts(); served != 1 {
				t.Fatal("the persisted fresh token was not used: refreshed again")
			}
			// The stored refresh token is the rotated one: it works.
			if _, _, err := v2.AccessToken(context.Background(), u.ID, true); err != nil {
				t.Fatalf("forced refresh with the stored token: %v", err)
			}
			if served, reused := srv.counts(); served != 2 || reused != 0 {
				t.Fatalf("served %d, reused %d; want 2, 0", served, reused)
			}
		})
	}
}
