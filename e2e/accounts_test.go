package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

// Several ChatGPT accounts per user (docs/accounts.md):
// a user's second account, linked with `caddy codex-proxy accounts add`
// through the running Caddy's admin API, takes over when the fake backend
// says the first has reached its usage limit, and the client never knows.

const failoversSeries = "caddy_codex_proxy_account_failovers_total"

// listedAccount is one account of `accounts list --json`.
type listedAccount struct {
	ID             string    `json:"id"`
	AccountID      string    `json:"account_id"`
	Label          string    `json:"label"`
	Position       int       `json:"position"`
	ExhaustedUntil time.Time `json:"exhausted_until"`
}

// accountsList runs `caddy codex-proxy accounts list --json`.
func (p *proxy) accountsList(t *testing.T, email string) []listedAccount {
	t.Helper()
	out, _ := p.cli(t, "accounts", "list", "--email", email, "--json")
	var res struct {
		Email    string          `json:"email"`
		Policy   string          `json:"policy"`
		Accounts []listedAccount `json:"accounts"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("accounts list --json: %v\n%s", err, out)
	}
	return res.Accounts
}

// addAccount links the fake's accountID to email as one more account with
// `accounts add` while Caddy runs, and returns the link id it printed.
func (p *proxy) addAccount(t *testing.T, fake *codextest.Server, email, accountID, label string) string {
	t.Helper()
	auth := p.authFile(t, fake, accountID, "work-"+accountID+"@corp.example", "pro")
	out, stderr := p.cli(t, "accounts", "add", "--email", email, "--auth-file", auth, "--label", label)
	if !strings.Contains(stderr, "using the admin API of the Caddy at "+p.admin) {
		t.Fatalf("accounts add with Caddy running did not use the admin API:\n%s", stderr)
	}
	id := strings.TrimSpace(out)
	if id == "" || strings.ContainsAny(id, " \n") {
		t.Fatalf("accounts add printed %q on stdout, want the account id alone\nstderr:\n%s", out, stderr)
	}
	return id
}

// twoAccounts is a user with two linked ChatGPT accounts.
type twoAccounts struct {
	email, key   string
	acc1, acc2   string // the fake's ChatGPT account ids, in the user's order
	link1, link2 string // the proxy's ids of the two links
}

// linkTwo gives email (provisioned with acc1 already, or provisioned here
// through the running Caddy when key is "") a second account acc2.
func (p *proxy) linkTwo(t *testing.T, fake *codextest.Server, email, key, acc1, acc2 string) twoAccounts {
	t.Helper()
	if key == "" {
		key, _ = p.provision(t, email, p.authFile(t, fake, acc1, email, "plus"))
	}
	u := twoAccounts{email: email, key: key, acc1: acc1, acc2: acc2}
	u.link2 = p.addAccount(t, fake, email, acc2, "work")
	list := p.accountsList(t, email)
	if len(list) != 2 || list[0].AccountID != acc1 || list[1].AccountID != acc2 || list[1].ID != u.link2 ||
		list[1].Label != "work" || list[0].Position != 1 || list[1].Position != 2 {
		t.Fatalf("accounts of %s after accounts add: %+v", email, list)
	}
	u.link1 = list[0].ID
	return u
}

// wantCounts checks what reached the fake with an account's token.
func wantCounts(t *testing.T, fake *codextest.Server, account string, total, limited int) {
	t.Helper()
	if gotTotal, gotLimited := fake.AccountRequests(account); gotTotal != total || gotLimited != limited {
		t.Errorf("%s: the fake got %d generations (%d refused at the usage limit), want %d (%d)",
			account, gotTotal, gotLimited, total, limited)
	}
}

// around reports whether got is within tolerance of want.
func around(got, want time.Time, tolerance time.Duration) bool {
	d := got.Sub(want)
	return d > -tolerance && d < tolerance
}

// generate is one way a client asks for a generation; it returns the
// answer's text.
type generate func(ctx context.Context, c openai.Client, text string) (string, error)

var generations = []struct {
	name string
	run  generate
}{
	{"chat", func(ctx context.Context, c openai.Client, text string) (string, error) {
		cc, err := c.Chat.Completions.New(ctx, chatParams(text))
		if err != nil {
			return "", err
		}
		return cc.Choices[0].Message.Content, nil
	}},
	{"chat-stream", func(ctx context.Context, c openai.Client, text string) (string, error) {
		cc, err := streamText(ctx, c, text)
		if err != nil {
			return "", err
		}
		if len(cc.Choices) == 0 {
			return "", errors.New("the stream had no choice")
		}
		return cc.Choices[0].Message.Content, nil
	}},
	{"responses", func(ctx context.Context, c openai.Client, text string) (string, error) {
		r, err := c.Responses.New(ctx, responsesParams(text))
		if err != nil {
			return "", err
		}
		if r.Status != "completed" {
			return "", errors.New("response status " + string(r.Status))
		}
		return r.OutputText(), nil
	}},
	{"responses-stream", func(ctx context.Context, c openai.Client, text string) (string, error) {
		st := c.Responses.NewStreaming(ctx, responsesParams(text))
		var out string
		completed := false
		for st.Next() {
			ev := st.Current()
			if ev.Type == "response.completed" {
				completed = true
				out = ev.Response.OutputText()
			}
		}
		if err := st.Err(); err != nil {
			return "", err
		}
		if !completed {
			return "", errors.New("the stream ended without response.completed")
		}
		return out, nil
	}},
}

func responsesParams(text string) responses.ResponseNewParams {
	return responses.ResponseNewParams{Model: "gpt-5.5", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(text)}}
}

// TestAccountsFailover: for each of chat and responses, streamed or not,
// a user with two linked accounts whose first is at its usage limit gets a
// normal answer from the second; the first is marked and not asked again;
// accounts list, /v1/usage, the failover metric and the request log say so.
func TestAccountsFailover(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{})
	p, _ := startProxy(t, fake, "")
	const resetIn = 90 * time.Minute

	users := map[string]twoAccounts{}
	t.Run("clients", func(t *testing.T) {
		for _, g := range generations {
			u := p.linkTwo(t, fake, g.name+"@example.com", "", "acc-"+g.name+"-1", "acc-"+g.name+"-2")
			users[g.name] = u
			t.Run(g.name, func(t *testing.T) {
				t.Parallel()
				fake.SetUsageBudget(u.acc1, 0, resetIn)
				limitedAt := time.Now()
				c := p.openaiClient(t, p.httpURL, u.key, nil)

				nonce := "failover-" + g.name + "-nonce"
				text, err := g.run(withTimeout(t), c, "hello "+nonce)
				if err != nil {
					t.Fatalf("the client saw an error: %v", err)
				}
				if !strings.Contains(text, nonce) {
					t.Fatalf("answer %q does not echo %q", text, nonce)
				}
				// One refusal at the first account, then the same request
				// was served by the second.
				wantCounts(t, fake, u.acc1, 1, 1)
				wantCounts(t, fake, u.acc2, 1, 0)
				if got := upstreamRequest(t, fake, nonce).Header.Get("ChatGPT-Account-ID"); got != u.acc2 {
					t.Errorf("the served request went out as %q, want %q", got, u.acc2)
				}

				// The first account is marked until the reset the fake named.
				list := p.accountsList(t, u.email)
				if !around(list[0].ExhaustedUntil, limitedAt.Add(resetIn), 5*time.Second) || !list[1].ExhaustedUntil.IsZero() {
					t.Errorf("accounts list: first exhausted until %v (want about %v), second %v",
						list[0].ExhaustedUntil, limitedAt.Add(resetIn), list[1].ExhaustedUntil)
				}
				usage := userAccounts(t, p, u.key)
				if len(usage) != 2 || usage[0].ID != u.link1 || usage[0].ExhaustedUntil.IsZero() ||
					usage[1].ID != u.link2 || !usage[1].ExhaustedUntil.IsZero() || usage[1].Quota == nil {
					t.Errorf("/v1/usage accounts: %+v", usage)
				}

				// Once marked, the first account is not asked again.
				nonce2 := "again-" + g.name + "-nonce"
				if text, err := g.run(withTimeout(t), c, "hello "+nonce2); err != nil || !strings.Contains(text, nonce2) {
					t.Fatalf("second request: %q, %v", text, err)
				}
				wantCounts(t, fake, u.acc1, 1, 1)
				wantCounts(t, fake, u.acc2, 2, 0)
			})
		}
	})
	if t.Failed() {
		return
	}
	if got := scrape(t, p, failoversSeries); got != float64(len(generations)) {
		t.Errorf("%s = %v, want %d", failoversSeries, got, len(generations))
	}

	// The request log: each user's first request was served by the second
	// account after the first, the next one by the second directly.
	recs := stopAndReadLog(t, p)
	for name, u := range users {
		var failedOver, direct int
		for _, r := range recs {
			if r.AccountID != u.link2 && r.AccountID != u.link1 {
				continue
			}
			switch {
			case r.Status != http.StatusOK || r.AccountID != u.link2:
				t.Errorf("%s: log record %+v, want status 200 on account %s", name, r, u.link2)
			case r.FailoverFrom == u.link1:
				failedOver++
			case r.FailoverFrom == "":
				direct++
			default:
				t.Errorf("%s: failover_from %q, want %q", name, r.FailoverFrom, u.link1)
			}
		}
		if failedOver != 1 || direct != 1 {
			t.Errorf("%s: the request log has %d failed-over and %d direct records, want 1 and 1", name, failedOver, direct)
		}
	}
}

// TestAccountsAllExhausted: when both of a user's accounts are at their
// limit, the client gets one 429 usage_limit_reached whose Retry-After is
// the soonest reset; while both are known to be exhausted, the proxy
// answers so at once without asking the upstream.
func TestAccountsAllExhausted(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{})
	p, key := startProxy(t, fake, "") // ada@example.com, provisioned with acc-ada
	u := p.linkTwo(t, fake, "ada@example.com", key, "acc-ada", "acc-ada-work")
	c := p.openaiClient(t, p.httpURL, u.key, nil)

	// Served by the first account while it has room.
	if text, err := generations[0].run(withTimeout(t), c, "before the limit"); err != nil || !strings.Contains(text, "before the limit") {
		t.Fatalf("before the limit: %q, %v", text, err)
	}
	const soonest = 40 * time.Minute
	// The first account resets sooner than the second, the last one
	// asked: the client must hear of the first's.
	fake.SetUsageBudget(u.acc1, 0, soonest)
	fake.SetUsageBudget(u.acc2, 0, 2*time.Hour)
	limitedAt := time.Now()

	wantExhausted := func(name string, err error) {
		t.Helper()
		apiErr := wantRefusal(t, name, err, http.StatusTooManyRequests, "usage_limit_reached")
		ra, _ := strconv.Atoi(apiErr.Response.Header.Get("Retry-After"))
		want := time.Until(limitedAt.Add(soonest)).Seconds()
		if math.Abs(float64(ra)-want) > 1.5 { // the fake's resets_at is in whole seconds
			t.Errorf("%s: Retry-After %d, want the soonest reset, %.1f s away", name, ra, want)
		}
	}
	// A stream: both accounts are asked, both refuse, one 429 comes back.
	_, err := generations[1].run(withTimeout(t), c, "both at the limit")
	wantExhausted("chat stream", err)
	wantCounts(t, fake, u.acc1, 2, 1)
	wantCounts(t, fake, u.acc2, 1, 1)

	// Known exhausted: answered at once, the upstream is not asked.
	_, err = generations[2].run(withTimeout(t), c, "still at the limit")
	wantExhausted("responses", err)
	wantCounts(t, fake, u.acc1, 2, 1)
	wantCounts(t, fake, u.acc2, 1, 1)

	list := p.accountsList(t, u.email)
	if !around(list[0].ExhaustedUntil, limitedAt.Add(soonest), 5*time.Second) ||
		!around(list[1].ExhaustedUntil, limitedAt.Add(2*time.Hour), 5*time.Second) {
		t.Errorf("accounts list: %+v", list)
	}
	// No failover happened: the request was not served.
	if got := scrape(t, p, failoversSeries); got > 0 {
		t.Errorf("%s = %v with no request served by another account", failoversSeries, got)
	}
}

// usageAccount is one account in GET /v1/usage.
type usageAccount struct {
	ID             string          `json:"id"`
	Position       int             `json:"position"`
	ExhaustedUntil time.Time       `json:"exhausted_until"`
	Quota          json.RawMessage `json:"quota"`
}

// userAccounts reads the accounts of GET /v1/usage.
func userAccounts(t *testing.T, p *proxy, key string) []usageAccount {
	t.Helper()
	req, _ := http.NewRequestWithContext(withTimeout(t), http.MethodGet, p.httpURL+"/v1/usage", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var u struct {
		Accounts []usageAccount `json:"accounts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/v1/usage: %d %v", resp.StatusCode, err)
	}
	return u.Accounts
}

// stopAndReadLog stops Caddy (it holds the vault's lock) and reads the
// whole request log.
func stopAndReadLog(t *testing.T, p *proxy) []vault.LogRecord {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("caddy did not stop")
	}
	v, err := engine.Open(context.Background(), filepath.Join(p.dir, "vault", "vault.db"), vault.Options{EncryptionKeys: []string{encKey}, Pepper: pepper})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	recs, err := v.RecentRequests("", time.Time{}, 1000, vault.StatusAll)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// codexTurn is what one `codex exec --json` run reported.
type codexTurn struct {
	agentText string
	completed bool
	errors    []string // error and turn.failed events
}

// runCodex runs the Codex CLI with args in work, configured by codexHome
// to use the proxy with key; a non-zero exit fails the test.
func runCodex(t *testing.T, codexHome, work, key string, args ...string) codexTurn {
	t.Helper()
	codexBin := filepath.Join(nodeDir(t), "node_modules", ".bin", "codex")
	timeoutBin, err := exec.LookPath("timeout")
	if err != nil {
		needTool(t, "timeout (coreutils)", "install coreutils")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 70*time.Second)
	defer cancel()
	// Codex retries a failing provider for a long time: timeout bounds it.
	cmd := exec.CommandContext(ctx, timeoutBin, append([]string{"60", codexBin}, args...)...)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), nodePath(t), "CODEX_HOME="+codexHome, "HOME="+filepath.Dir(codexHome),
		"CODEX_PROXY_API_KEY="+key, "NO_COLOR=1", "RUST_LOG=warn")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	t.Logf("codex %s took %s", args[:2], time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("codex %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	var turn codexTurn
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Type string `json:"type"`
			Item struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"item"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		switch {
		case ev.Type == "item.completed" && ev.Item.Type == "agent_message":
			turn.agentText = ev.Item.Text
		case ev.Type == "turn.completed":
			turn.completed = true
		case ev.Type == "error" || ev.Type == "turn.failed":
			turn.errors = append(turn.errors, sc.Text())
		}
	}
	if !turn.completed || turn.agentText == "" || len(turn.errors) > 0 {
		t.Fatalf("codex %s: agent text %q, turn completed %v, errors %q\nstderr:\n%s",
			strings.Join(args, " "), turn.agentText, turn.completed, turn.errors, stderr.String())
	}
	return turn
}

// TestCodexCLIAccountFailover: a user with two linked accounts works in
// one Codex CLI session over two turns (`codex exec`, then `codex exec
// resume --last`). Between the turns the first account reaches its usage
// limit; the second turn, although its conversation was served by the
// first account, is served by the second and the CLI notices nothing.
func TestCodexCLIAccountFailover(t *testing.T) {
	t.Parallel()
	caddyBinary(t) // skip first when there is no caddy
	needNodeModule(t, "@openai/codex")
	nodeBinary(t)

	fake := newFake(t, codextest.Options{Default: codextest.ScenarioPlain})
	p, key := startProxy(t, fake, "") // ada@example.com, provisioned with acc-ada
	u := p.linkTwo(t, fake, "ada@example.com", key, "acc-ada", "acc-ada-work")

	home := t.TempDir()
	codexHome := filepath.Join(home, ".codex")
	work := filepath.Join(home, "work")
	for _, d := range []string{codexHome, work} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(codexHome, "config.toml"), []byte(fmt.Sprintf(codexConfig, p.httpURL, false)), 0o600); err != nil {
		t.Fatal(err)
	}

	first := runCodex(t, codexHome, work, u.key, "exec", "--skip-git-repo-check", "--json", "first turn cli-turn-one")
	if !strings.Contains(first.agentText, "cli-turn-one") {
		t.Errorf("first turn's answer: %q", first.agentText)
	}
	wantCounts(t, fake, u.acc1, 1, 0)
	wantCounts(t, fake, u.acc2, 0, 0)

	fake.SetUsageBudget(u.acc1, 0, time.Hour)

	second := runCodex(t, codexHome, work, u.key, "exec", "resume", "--last", "--skip-git-repo-check", "--json", "second turn cli-turn-two")
	if !strings.Contains(second.agentText, "cli-turn-two") {
		t.Errorf("second turn's answer: %q", second.agentText)
	}
	// The second turn was refused once at the first account and served by
	// the second.
	wantCounts(t, fake, u.acc1, 2, 1)
	wantCounts(t, fake, u.acc2, 1, 0)

	// It was the same conversation: the second turn carries the first
	// turn's history and its prompt_cache_key, which had kept it on the
	// first account.
	var one codextest.Request
	for _, r := range fake.RequestsTo("/responses") {
		if bytes.Contains(r.Body, []byte("cli-turn-one")) {
			one = r // the first turn's, not the second's that re-sends it
			break
		}
	}
	two := upstreamRequest(t, fake, "cli-turn-two") // the last: the one served
	if !bytes.Contains(two.Body, []byte("cli-turn-one")) {
		t.Errorf("the second turn does not carry the first: %s", two.Body)
	}
	k1, _ := one.JSON["prompt_cache_key"].(string)
	k2, _ := two.JSON["prompt_cache_key"].(string)
	if k1 == "" || k1 != k2 {
		t.Errorf("prompt_cache_key: first turn %q, second %q, want one non-empty key", k1, k2)
	}
	if got := two.Header.Get("ChatGPT-Account-ID"); got != u.acc2 {
		t.Errorf("the second turn was served as %q, want %q", got, u.acc2)
	}
	if got := scrape(t, p, failoversSeries); got != 1 {
		t.Errorf("%s = %v, want 1", failoversSeries, got)
	}
}
