package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// TestCluster runs docs/clusters.md's recipe end to end: three real
// Caddy instances with the codex_proxy module on one PostgreSQL (the vault
// and Caddy's certificate storage in one database) behind a fourth Caddy
// balancing round robin, with the official OpenAI Go client in front.
// Each subtest is one failure a cluster must survive; they share the
// cluster and run in order. Certificates shared through PostgreSQL are
// covered by TestCertificatesInACluster (certcluster_test.go).
func TestCluster(t *testing.T) {
	fake := newFake(t, codextest.Options{SlowDelay: 100 * time.Millisecond})
	users := map[string]codextest.Tokens{
		// Logins whose access token has expired: the first request
		// refreshes.
		"ada@example.com": fake.AddAccountTTL(accountOf("ada@example.com"), "ada@example.com", "plus", -time.Minute),
		"kim@example.com": fake.AddAccountTTL(accountOf("kim@example.com"), "kim@example.com", "plus", -time.Minute),
		"eve@example.com": fake.AddAccountTTL(accountOf("eve@example.com"), "eve@example.com", "plus", -time.Minute),
		// Fresh logins.
		"rev@example.com": fake.AddAccount(accountOf("rev@example.com"), "rev@example.com", "plus"),
		"pat@example.com": fake.AddAccount(accountOf("pat@example.com"), "pat@example.com", "plus"),
		"rol@example.com": fake.AddAccount(accountOf("rol@example.com"), "rol@example.com", "plus"),
	}
	c, keys := newCluster(t, fake, users)
	c.start(t)

	t.Run("one refresh for 150 concurrent requests", func(t *testing.T) { clusterHerd(t, c, keys["ada@example.com"]) })
	t.Run("revocation reaches every instance", func(t *testing.T) { clusterRevoke(t, c, "rev@example.com", keys["rev@example.com"]) })
	t.Run("refresh holder killed mid-refresh", func(t *testing.T) { clusterKillRefresher(t, c, keys["kim@example.com"]) })
	t.Run("PostgreSQL restarted under load", func(t *testing.T) {
		clusterDatabaseRestart(t, c, keys["pat@example.com"], keys["eve@example.com"])
	})
	t.Run("rolling restart under 64 streams", func(t *testing.T) { clusterRollingRestart(t, c, keys["rol@example.com"]) })
}

// clusterHerd: 150 concurrent requests (50 per instance) of a user whose
// access token has expired make exactly one refresh between the three
// instances, and all succeed.
func clusterHerd(t *testing.T, c *cluster, key string) {
	before := c.fake.RefreshCount()
	client := c.lb.client(key)
	const n = 150
	errs := make(chan error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := client.Chat.Completions.New(withTimeout(t), chatParams(fmt.Sprint("herd ", i)))
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			if failed <= 3 {
				t.Errorf("request failed: %v", err)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d requests failed", failed, n)
	}
	if got := c.fake.RefreshCount() - before; got != 1 {
		t.Errorf("%d refreshes reached the token endpoint for one user, want 1", got)
	}
	if r := c.fake.RefreshReuses(); r != 0 {
		t.Errorf("%d refresh tokens presented twice", r)
	}
}

// clusterRevoke: a key revoked with the CLI (on instance A's config, which
// writes to the database directly) is refused by B and C, asked directly,
// within one second.
func clusterRevoke(t *testing.T, c *cluster, email, key string) {
	others := c.nodes[1:]
	for _, n := range others {
		cl := n.client(key)
		if _, err := cl.Models.List(withTimeout(t)); err != nil {
			t.Fatalf("%s before the revocation: %v", n.name, err)
		}
	}
	id := c.nodes[0].keyID(t, email)
	c.nodes[0].cli(t, "keys", "revoke", "--email", email, "--id", id)
	revoked := time.Now()
	var wg sync.WaitGroup
	for _, n := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				req, _ := http.NewRequest(http.MethodGet, n.url+"/v1/models", nil)
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusUnauthorized {
						t.Logf("%s refuses the key %s after the CLI returned", n.name, time.Since(revoked).Round(time.Millisecond))
						return
					}
				}
				if time.Since(revoked) > time.Second {
					t.Errorf("%s still accepts the revoked key 1 s after the CLI returned (last: %v %v)", n.name, err, statusOf(resp))
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
}

func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// clusterKillRefresher: instance A starts a refresh, whose grant the token
// endpoint delays, and is killed with SIGKILL while it waits. The next
// request, on B, refreshes and succeeds (PostgreSQL released A's refresh
// lock with its session), and no refresh token was presented twice. A is
// started again for the next subtests.
func clusterKillRefresher(t *testing.T, c *cluster, key string) {
	a, b := c.nodes[0], c.nodes[1]
	grants := len(c.fake.RequestsTo("/oauth/token"))
	refreshes := c.fake.RefreshCount()
	c.fake.DelayRefreshes(1, 30*time.Second)
	aDone := make(chan error, 1)
	go func() {
		cl := a.client(key)
		_, err := cl.Chat.Completions.New(withTimeout(t), chatParams("killed mid-refresh"))
		aDone <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(c.fake.RequestsTo("/oauth/token")) == grants {
		if time.Now().After(deadline) {
			t.Fatalf("%s sent no refresh within 10 s:\n%s", a.name, a.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.kill(t)
	if err := <-aDone; err == nil {
		t.Fatalf("the request on the killed %s succeeded", a.name)
	}

	start := time.Now()
	bc := b.client(key)
	res, err := bc.Chat.Completions.New(withTimeout(t), chatParams("after the kill"))
	if err != nil {
		t.Fatalf("request on %s after %s was killed mid-refresh: %v\n%s", b.name, a.name, err, b.logs.String())
	}
	if !strings.Contains(res.Choices[0].Message.Content, "after the kill") {
		t.Fatalf("unexpected answer %q", res.Choices[0].Message.Content)
	}
	t.Logf("%s refreshed and answered %s after %s was killed", b.name, time.Since(start).Round(time.Millisecond), a.name)
	if r := c.fake.RefreshReuses(); r != 0 {
		t.Fatalf("%d refresh tokens presented twice", r)
	}
	if got := c.fake.RefreshCount() - refreshes; got != 1 {
		t.Fatalf("%d refreshes processed, want 1 (%s's was abandoned before the issuer saw it)", got, a.name)
	}
	a.start(t)
}

// clusterDatabaseRestart: PostgreSQL is stopped for two seconds while
// eight clients send requests through the balancer. Requests that need no
// database (a valid key, a fresh token) all succeed; one that needs it (a
// refresh) gets 503 vault_unavailable while it is down and succeeds once
// it is back, with no instance restarted. Every request the clients saw
// succeed is in the request log afterwards.
func clusterDatabaseRestart(t *testing.T, c *cluster, key, expiredKey string) {
	client := c.lb.client(key)
	var (
		mu     sync.Mutex
		ids    []string
		failed []string
		stop   atomic.Bool
		wg     sync.WaitGroup
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load() && i < 10000; i++ {
				var resp *http.Response
				_, err := client.Chat.Completions.New(withTimeout(t), chatParams(fmt.Sprintf("load %d/%d", w, i)), option.WithResponseInto(&resp))
				mu.Lock()
				if err != nil {
					st, code := apiStatus(err)
					failed = append(failed, fmt.Sprintf("%d %s", st, code))
				} else {
					ids = append(ids, resp.Header.Get("X-Request-Id"))
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second)
	c.pg.Stop()
	downAt := time.Now()
	time.Sleep(500 * time.Millisecond)
	expired := c.lb.client(expiredKey)
	_, err := expired.Chat.Completions.New(withTimeout(t), chatParams("needs a refresh"))
	if st, code := apiStatus(err); st != http.StatusServiceUnavailable || code != "vault_unavailable" {
		t.Errorf("a request needing a refresh with PostgreSQL down: %d %s, want 503 vault_unavailable", st, code)
	}
	time.Sleep(time.Until(downAt.Add(2 * time.Second)))
	c.pg.Start()
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(failed) > 0 {
		t.Errorf("%d of %d requests needing no database failed while it restarted: %s", len(failed), len(failed)+len(ids), strings.Join(failed[:min(5, len(failed))], "; "))
	}
	t.Logf("%d requests served while PostgreSQL restarted", len(ids))
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := expired.Chat.Completions.New(withTimeout(t), chatParams("needs a refresh"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a refresh still fails 15 s after PostgreSQL came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Every acknowledged request reaches the request log (the writers
	// retry batches that failed while the database was down).
	var missing []string
	for {
		logged := requestLogIDs(t, c.dsn)
		missing = missing[:0]
		for _, id := range ids {
			if id == "" || !logged[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged requests are not in codex_request_log, e.g. %q", len(missing), len(ids), missing[0])
	}
}

// requestLogIDs reads every request id in the vault's request log.
func requestLogIDs(t *testing.T, dsn string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT request_id FROM codex_request_log`)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// clusterRollingRestart: 64 clients stream long answers through the
// balancer while each instance in turn is stopped with `caddy stop` and
// started again. No stream fails: in-flight ones finish on the stopping
// instance (grace_period), new ones go to the others.
func clusterRollingRestart(t *testing.T, c *cluster, key string) {
	client := c.lb.client(key)
	// A long prompt makes a long answer: about 40 events 100 ms apart.
	prompt := "[[scenario:slow]] " + strings.Repeat("stream on through the restart ", 8)
	var (
		mu     sync.Mutex
		done   int
		failed []string
		stop   atomic.Bool
		wg     sync.WaitGroup
	)
	streamOnce := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s := client.Chat.Completions.NewStreaming(ctx, chatParams(prompt))
		acc := openai.ChatCompletionAccumulator{}
		for s.Next() {
			acc.AddChunk(s.Current())
		}
		if err := s.Err(); err != nil {
			return err
		}
		if len(acc.Choices) == 0 || acc.Choices[0].FinishReason != "stop" || !strings.Contains(acc.Choices[0].Message.Content, "through the restart") {
			return fmt.Errorf("incomplete stream: %s", acc.RawJSON())
		}
		return nil
	}
	firstDone := make(chan time.Duration, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load() && i < 1000; i++ {
				start := time.Now()
				err := streamOnce()
				mu.Lock()
				if err != nil {
					failed = append(failed, err.Error())
				} else {
					done++
				}
				mu.Unlock()
				if i == 0 {
					firstDone <- time.Since(start)
				}
			}
		}()
	}
	t.Logf("first stream took %s", (<-firstDone).Round(time.Millisecond))
	for _, n := range c.nodes {
		n.stop(t)
		n.start(t)
		// Let the balancer's health check see it back before the next one
		// goes down.
		time.Sleep(time.Second)
	}
	stop.Store(true)
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d of %d streams failed during the rolling restart, e.g. %s", len(failed), len(failed)+done, failed[0])
	}
	t.Logf("%d streams completed during the rolling restart, none failed", done)
}
