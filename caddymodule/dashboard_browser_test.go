package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/emersion/go-smtp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// TestDashboardBrowserJourney drives Debian's Chromium through the whole
// dashboard as a new user would: ask for a magic link (caught by an
// in-process SMTP server), open and confirm it, link ChatGPT by pasting the
// error page's address against the fake OAuth server, create a key (with a
// double click: one key), call /v1/chat/completions with it, find the call
// in the requests table, revoke the key and see the next call fail. Every
// page is surveyed at 390 and 1280 px wide: nothing a user needs is
// clipped, covered or off screen, and a screenshot of each goes to
// $CODEX_PROXY_ARTIFACTS (or a temp dir; the path is logged). It runs
// against an httptest server with the handler, or against the real caddy
// binary when CODEX_PROXY_CADDY is set.
func TestDashboardBrowserJourney(t *testing.T) {
	chromium := findChromium(t)
	fake := codextest.New(t)
	fake.AddAccount("acc-browser", "ada@chatgpt.example", "plus")
	sink := newMailSink(t)
	base := startDashboardSite(t, fake, sink.addr)
	t.Logf("site %s", base)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	// Start the browser on the long-lived context: steps below use
	// contexts with timeouts, and the first Run binds the browser to its
	// context.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}

	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			dctx, cancel := context.WithTimeout(bctx, 5*time.Second)
			defer cancel()
			loc, _ := chromedp.Run(dctx, chromedp.Location())
			body, _ := chromedp.Run(dctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("%s: %v (at %s)\n%s", what, err, loc, body)
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	attr := func(sel, name string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		a, err := chromedp.Run(sctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
		if err != nil || !a.Exists {
			t.Fatalf("attribute %s of %s: %v", name, sel, err)
		}
		return a.Value
	}
	eval := func(expr string) bool {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[bool](expr))
		if err != nil {
			t.Fatalf("evaluating %s: %v", expr, err)
		}
		return v
	}
	poll := func(expr string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		if _, err := chromedp.Run(sctx, chromedp.Poll[bool](expr)); err != nil {
			t.Fatalf("waiting for %s: %v (hint: %s)", expr, err, text("body"))
		}
	}
	pageText := func() string { return text("body") }
	dir := os.Getenv("CODEX_PROXY_ARTIFACTS")
	if dir == "" {
		dir = os.Getenv("DASHBOARD_SCREENSHOTS")
	}
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // quality 100: PNG
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// survey looks at the current page at phone and desktop width without
	// reloading it (a new key is shown once): layout problems fail the
	// test, and each width gets a screenshot.
	desktop := func() { step("desktop", chromedp.EmulateReset(), chromedp.EmulateViewport(1280, 900)) }
	survey := func(name string) {
		t.Helper()
		for _, w := range []int64{390, 1280} {
			if w == 390 {
				step("phone "+name, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
			} else {
				desktop()
			}
			step("settle", chromedp.Sleep(150*time.Millisecond))
			sctx, cancel := context.WithTimeout(bctx, 30*time.Second)
			problems, err := chromedp.Run(sctx, chromedp.Evaluate[[]string](layoutProblemsJS))
			cancel()
			if err != nil {
				t.Fatalf("layout check of %s: %v", name, err)
			}
			for _, p := range problems {
				t.Errorf("%s at %d px: %s", name, w, p)
			}
			shot(fmt.Sprintf("%s-%d", name, w))
		}
	}

	// 1. Landing page → sign-in → magic link by mail.
	step("landing", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`a.btn-primary[href="/login"]`)))
	survey("landing")
	step("to sign-in", chromedp.Click(chromedp.CSS(`a.btn-primary[href="/login"]`)), chromedp.WaitVisible(chromedp.CSS("#email")))
	survey("login")
	// A display name is refused in plain words.
	step("bad address", chromedp.SendKeys(chromedp.CSS("#email"), "Ada <ada@example.com>"), chromedp.Submit(chromedp.CSS("#email")),
		chromedp.WaitVisible(chromedp.CSS("#form-error")))
	if s := text("#form-error"); !strings.Contains(s, "without a name") {
		t.Fatalf("bad address: %s", s)
	}
	eval(`(document.getElementById("email").value = "", true)`)
	step("ask for a link", chromedp.SendKeys(chromedp.CSS("#email"), "ada@example.com"),
		chromedp.Submit(chromedp.CSS("#email")), chromedp.WaitVisible(chromedp.CSS(".icon-circle")))
	if !strings.Contains(pageText(), "Check your email") {
		t.Fatalf("after asking for a link: %s", pageText())
	}
	survey("login-sent")
	link := sink.link(t)
	if !strings.HasPrefix(link, base+"/login/confirm?token=") {
		t.Fatalf("mailed link %q", link)
	}

	// 2. Open the link: it names the account; confirm: onboarding, where
	// step 2 waits for step 1.
	step("open link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#confirm")))
	if s := text("#confirm"); s != "Sign in as ada@example.com" {
		t.Fatalf("confirm button %q", s)
	}
	survey("confirm")
	step("confirm", chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#start-link")))
	if !strings.Contains(pageText(), "Get started") {
		t.Fatalf("not on onboarding: %s", pageText())
	}
	if !eval(`document.getElementById("create-key").disabled`) || !strings.Contains(text("#key-locked"), "after step 1") {
		t.Fatal("step 2 is usable before step 1")
	}
	if eval(`document.getElementById("advanced").open`) {
		t.Fatal("auth.json is not tucked under Advanced")
	}
	survey("onboarding")

	// 3. Link ChatGPT as a non-developer would: press the one big button,
	// open ChatGPT's page, end on the error page at localhost:1455 and
	// paste its address. A wrong paste is explained while typing.
	step("start link", chromedp.Click(chromedp.CSS("#start-link")), chromedp.WaitVisible(chromedp.CSS("#authorize-link")))
	survey("link")
	desktop()
	authURL := attr("#authorize-link", "href")
	if !strings.HasPrefix(authURL, fake.IssuerURL+"/oauth/authorize?") {
		t.Fatalf("authorize link %q", authURL)
	}
	if s := pageText(); !strings.Contains(s, "This site can’t be reached") || !strings.Contains(s, "That is expected") {
		t.Fatalf("no picture of the error page: %s", s)
	}
	step("wrong paste", chromedp.SendKeys(chromedp.CSS("#callback"), "https://chatgpt.com/codex"))
	poll(`document.getElementById("callback-hint").textContent.includes("another site")`)
	callback := followAuthorize(t, authURL)
	eval(`(document.getElementById("callback").value = "", true)`)
	step("paste callback", chromedp.SendKeys(chromedp.CSS("#callback"), callback))
	poll(`document.getElementById("callback-hint").textContent.includes("Looks right")`)
	step("finish", chromedp.Click(chromedp.CSS("#finish-link")), chromedp.WaitVisible(chromedp.CSS("#linked-as")))
	if s := pageText(); !strings.Contains(s, "Linked as ada@chatgpt.example (plus)") || !strings.Contains(s, "Next: create your first API key") {
		t.Fatalf("after linking: %s", s)
	}
	if eval(`document.getElementById("create-key").disabled`) {
		t.Fatal("step 2 still disabled after linking")
	}
	survey("onboarding-linked")
	desktop()

	// 4. Create the first key with a double click: one key, shown once.
	step("create key", chromedp.SendKeys(chromedp.CSS("#label"), "browser"), chromedp.DoubleClick(chromedp.CSS("#create-key")),
		chromedp.WaitVisible(chromedp.CSS("#new-key")))
	key := strings.TrimSpace(text("#new-key"))
	if !strings.HasPrefix(key, "cpk_") {
		t.Fatalf("key %q", key)
	}
	snippet, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.CSS("#snippet-codex"))) // inside a closed <details>
	if err != nil {
		t.Fatal(err)
	}
	if s := snippet; !strings.Contains(s, `wire_api = "responses"`) || !strings.Contains(s, base+"/v1") {
		t.Fatalf("codex snippet: %s", s)
	}
	eval(`(document.querySelectorAll("details.snippet").forEach(d => d.open = true), true)`)
	survey("new-key")
	desktop()
	step("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("main h1")))
	if s := pageText(); strings.Contains(s, key) || !strings.Contains(s, "hidden now") {
		t.Fatalf("a reload shows the key again: %s", s)
	}
	if n := eval(`document.querySelectorAll("table.keys tbody tr").length === 1`); !n {
		t.Fatalf("a double click made more than one key: %s", text("table.keys"))
	}

	// 5. Use it with the official client.
	client := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
	var httpResp *http.Response
	cc, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "gpt-5.5",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello from the browser test")},
	}, option.WithResponseInto(&httpResp))
	if err != nil {
		t.Fatal(err)
	}
	if len(cc.Choices) == 0 || cc.Choices[0].Message.Content == "" {
		t.Fatalf("completion %s", cc.RawJSON())
	}
	reqID := httpResp.Header.Get("X-Request-Id")
	if reqID == "" {
		t.Fatal("no X-Request-Id")
	}

	// 5b. A second account, added by pasting its auth.json, serves the
	// next call after the first one reaches its usage limit: the log's
	// widest row (a long model name and effort, the account and the
	// failover note, a 200 after a 429).
	work := fake.AddAccount("acc-work", "work-team@chatgpt.example", "team")
	authJSON := fmt.Sprintf(`{"tokens":{"id_token":%q,"access_token":%q,"refresh_token":%q}}`, work.IDToken, work.AccessToken, work.RefreshToken)
	step("chatgpt", chromedp.Navigate(base+"/chatgpt"), chromedp.WaitVisible(chromedp.CSS("#start-add")))
	eval(fmt.Sprintf(`(document.querySelector("#add-authjson").closest("details") || {}).open = true, document.getElementById("add-authjson").value = %q, true`, authJSON))
	step("add account", chromedp.Click(chromedp.CSS("#import-add")), chromedp.WaitVisible(chromedp.CSS(".notice-ok")))
	if s := pageText(); !strings.Contains(s, "work-team@chatgpt.example") {
		t.Fatalf("second account not listed: %s", s)
	}
	fake.SetUsageBudget("acc-browser", 0, time.Hour)
	var failoverResp *http.Response
	if _, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:           "gpt-5.4-mini",
		ReasoningEffort: "xhigh",
		Messages:        []openai.ChatCompletionMessageParamUnion{openai.UserMessage("served by the second account")},
	}, option.WithResponseInto(&failoverResp)); err != nil {
		t.Fatal(err)
	}
	failoverID := failoverResp.Header.Get("X-Request-Id")
	// And a refused one: a long model name and an error code.
	var refusedResp *http.Response
	if _, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "gpt-5.3-codex-spark-preview",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("no such model")},
	}, option.WithResponseInto(&refusedResp)); err == nil {
		t.Fatal("a call with an unknown model succeeded")
	}
	refusedID := refusedResp.Header.Get("X-Request-Id")

	// 6. The calls show in the requests table (the log is written in the
	// background: reload until they are there), with a friendly route
	// name, the key's label and the id to copy.
	deadline := time.Now().Add(15 * time.Second)
	for {
		step("requests", chromedp.Navigate(base+"/requests"), chromedp.WaitVisible(chromedp.CSS(".filters")))
		if eval(fmt.Sprintf(`[%q, %q, %q].every(id => document.querySelector('button[data-copy="' + id + '"]'))`, reqID, failoverID, refusedID)) {
			if s := text("table.requests tbody"); !strings.Contains(s, "gpt-5.5") || !strings.Contains(s, "200") ||
				!strings.Contains(s, "Chat") || !strings.Contains(s, "browser") {
				t.Fatalf("request row: %s", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s not in the table: %s", reqID, pageText())
		}
		time.Sleep(200 * time.Millisecond)
	}

	if !eval(fmt.Sprintf(`(() => { const s = document.querySelector('button[data-copy=%q]').closest("tr").textContent;
	    return s.includes("work-team@chatgpt.example") && s.includes("reached its limit") && s.includes("xhigh"); })()`, failoverID)) {
		t.Fatalf("failover row: %s", text("table.requests tbody"))
	}

	// 7. Every page at both widths, then dark mode.
	for _, p := range []string{"overview", "keys", "requests", "chatgpt", "activity", "no-such-page"} {
		step(p, chromedp.Navigate(base+"/"+p), chromedp.WaitVisible(chromedp.CSS("main h1")))
		survey(p)
		if p == "requests" {
			// The request log: every column in its card at desktop
			// width, no sideways scrolling; cards on a phone.
			for _, w := range []int64{1280, 390} {
				if w == 390 {
					step("phone requests", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
				} else {
					desktop()
				}
				step("settle", chromedp.Sleep(150*time.Millisecond))
				sctx, cancel := context.WithTimeout(bctx, 30*time.Second)
				problems, err := chromedp.Run(sctx, chromedp.Evaluate[[]string](fmt.Sprintf(requestLogProblemsJS, w < 640)))
				cancel()
				if err != nil {
					t.Fatalf("request log check: %v", err)
				}
				for _, p := range problems {
					t.Errorf("request log at %d px: %s", w, p)
				}
			}
		}
		desktop()
		if s := pageText(); p == "chatgpt" && !strings.Contains(s, "acc-browser") {
			t.Fatalf("ChatGPT page: %s", s)
		}
		if s := text("main h1"); p == "no-such-page" && s != "This page does not exist" {
			t.Fatalf("unknown path: %s", s)
		}
	}
	if r, err := http.Get(base + "/no-such-page"); err != nil || r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path status: %v %v", r, err)
	} else {
		r.Body.Close()
	}
	setScheme := func(scheme string) {
		t.Helper()
		if _, err := chromedp.Call(bctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	setScheme("dark")
	for _, p := range []string{"keys", "overview"} {
		step("dark "+p, chromedp.Navigate(base+"/"+p), chromedp.WaitVisible(chromedp.CSS("main h1")))
		survey(p + "-dark")
	}
	desktop()
	setScheme("")

	// 8. Revoke the key, with confirmation; the next call is refused.
	step("keys", chromedp.Navigate(base+"/keys"), chromedp.WaitVisible(chromedp.CSS(`a[href^="/keys/revoke"]`)))
	step("revoke", chromedp.Click(chromedp.CSS(`a[href^="/keys/revoke"]`)), chromedp.WaitVisible(chromedp.CSS("#confirm-revoke")))
	survey("revoke")
	desktop()
	step("confirm revoke", chromedp.Click(chromedp.CSS("#confirm-revoke")), chromedp.WaitVisible(chromedp.CSS(".notice-ok")))
	if s := pageText(); !strings.Contains(s, "revoked") {
		t.Fatalf("after revoking: %s", s)
	}
	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "gpt-5.5",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("again")},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("call with a revoked key: %v", err)
	}

	// 9. Sign out everywhere.
	step("overview", chromedp.Navigate(base+"/overview"), chromedp.WaitVisible(chromedp.CSS("#signout-everywhere")))
	step("sign out everywhere", chromedp.Click(chromedp.CSS("#signout-everywhere")), chromedp.WaitVisible(chromedp.CSS("#email")))
	if s := pageText(); !strings.Contains(s, "signed out on every device") {
		t.Fatalf("after signing out everywhere: %s", s)
	}
}

// layoutProblemsJS lists what a user would find clipped, covered or off
// screen on the current page: a page wider than the screen, controls,
// headings and table cells outside the viewport or cut off by their
// scrolling box, Copy buttons over code, chart labels outside the drawing,
// text touching the screen edge, a key prefix broken over lines.
const layoutProblemsJS = `(() => {
  const out = [];
  const W = window.innerWidth;
  const de = document.documentElement;
  if (de.scrollWidth > W) out.push("the page scrolls sideways: " + de.scrollWidth + " > " + W);
  const shown = el => {
    const d = el.closest("details:not([open])");
    if (d && !el.closest("summary")) return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden";
  };
  const name = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + " “" + (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 40) + "”";
  document.querySelectorAll("header a, header button, main a, main button, main input, main textarea, main h1, main h2, main td, main .pill, main .stat-value, footer .wrap").forEach(el => {
    if (!shown(el) || el.closest("pre")) return;
    const r = el.getBoundingClientRect();
    if (r.left < -1 || r.right > W + 1) { out.push("off screen: " + name(el) + " spans " + Math.round(r.left) + "–" + Math.round(r.right)); return; }
    const wrap = el.closest(".table-wrap");
    if (wrap) {
      const w = wrap.getBoundingClientRect();
      if (r.right > w.right + 1) out.push("cut off by its table: " + name(el));
    }
  });
  document.querySelectorAll(".code").forEach(block => {
    const btn = block.querySelector(".btn-copy"), pre = block.querySelector("pre");
    if (!btn || !pre || !shown(btn)) return;
    const a = btn.getBoundingClientRect(), b = pre.getBoundingClientRect();
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) out.push("Copy button covers the code of " + pre.id);
  });
  document.querySelectorAll(".keybox, .base-url").forEach(box => {
    const btn = box.querySelector(".btn-copy"), code = box.querySelector("code");
    if (!btn || !code || !shown(btn)) return;
    const a = btn.getBoundingClientRect(), b = code.getBoundingClientRect();
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) out.push("Copy button covers " + name(code));
  });
  document.querySelectorAll("svg.chart").forEach(svg => {
    if (!shown(svg)) return;
    const s = svg.getBoundingClientRect();
    svg.querySelectorAll("text").forEach(tx => {
      const r = tx.getBoundingClientRect();
      if (r.left < s.left - 0.5 || r.right > s.right + 0.5 || r.top < s.top - 0.5 || r.bottom > s.bottom + 0.5) out.push("chart label cut off: " + tx.textContent);
    });
  });
  document.querySelectorAll(".brand, footer .wrap, main h1").forEach(el => {
    if (!shown(el)) return;
    const range = document.createRange();
    range.selectNodeContents(el);
    const r = range.getBoundingClientRect();
    if (r.left < 8) out.push("text touches the left edge: " + name(el));
  });
  document.querySelectorAll("code.keyprefix, .reqid").forEach(el => {
    if (!shown(el)) return;
    if (el.getClientRects().length > 1 || el.getBoundingClientRect().height > 2 * parseFloat(getComputedStyle(el).lineHeight || "20")) out.push("breaks over lines: " + name(el));
  });
  return out;
})()`

// requestLogProblemsJS lists what is wrong with the request log's layout
// (%%t: a phone, where rows are cards). On a desktop every header and cell
// must lie inside the card and the viewport with the table not scrolling
// sideways; on a phone the header is hidden and each row is a card of
// labelled lines inside the viewport.
const requestLogProblemsJS = `(() => {
  const out = [];
  const phone = %t;
  const W = window.innerWidth;
  const table = document.querySelector("table.requests");
  if (!table) return ["no request log"];
  const card = table.closest(".card").getBoundingClientRect();
  const wrap = table.closest(".table-wrap");
  const name = el => el.tagName.toLowerCase() + " “" + (el.getAttribute("data-label") || el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 30) + "”";
  const inside = (el, what) => {
    const r = el.getBoundingClientRect();
    if (r.left < card.left - 0.5 || r.right > card.right + 0.5) out.push(what + " outside the card: " + name(el) + " spans " + Math.round(r.left) + "–" + Math.round(r.right) + ", card " + Math.round(card.left) + "–" + Math.round(card.right));
    else if (r.left < -0.5 || r.right > W + 0.5) out.push(what + " off screen: " + name(el));
  };
  if (wrap.scrollWidth > wrap.clientWidth + 1) out.push("the table scrolls sideways: " + wrap.scrollWidth + " > " + wrap.clientWidth);
  if (phone) {
    if (table.querySelector("thead").getBoundingClientRect().height > 1) out.push("column headers shown on a phone");
    table.querySelectorAll("tbody tr").forEach(tr => inside(tr, "row"));
    table.querySelectorAll("tbody td").forEach(td => {
      if (getComputedStyle(td).display !== "flex") out.push("not a labelled line: " + name(td));
      inside(td, "cell");
    });
  } else {
    table.querySelectorAll("thead th").forEach(th => inside(th, "header"));
    table.querySelectorAll("tbody td").forEach(td => inside(td, "cell"));
    table.querySelectorAll("tbody td > *").forEach(el => { if (el.getBoundingClientRect().width > 0) inside(el, "content"); });
  }
  return out;
})()`

// findChromium returns the browser; without one the test fails on CI
// (CI=true) and is skipped elsewhere.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("the browser test needs Chromium (apt-get install -y chromium) and CI=true forbids skipping it")
	}
	t.Skip("no Chromium found (apt-get install -y chromium); skipped outside CI")
	return ""
}

// startDashboardSite serves the handler (dashboard + API) and returns its
// base URL: the real caddy binary when CODEX_PROXY_CADDY is set, else an
// httptest server.
func startDashboardSite(t *testing.T, fake *codextest.Server, smtpAddr string) string {
	t.Helper()
	if bin := os.Getenv("CODEX_PROXY_CADDY"); bin != "" {
		return startCaddyBinary(t, bin, fake, smtpAddr)
	}
	h := &Handler{
		Vault:          filepath.Join(t.TempDir(), "vault.db"),
		EncryptionKeys: []string{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		APIKeyPepper:   "browser-pepper-0123456789",
		Upstream:       fake.URL,
		OAuthIssuer:    fake.IssuerURL,
		Dashboard: &DashboardConfig{
			Signup: "open",
			SMTP:   &SMTPConfig{Address: smtpAddr, From: "UseMySub <noreply@example.com>", StartTLS: "off"},
		},
	}
	startHandler(t, h)
	// The end of Caddy's chain writes nothing: the dashboard's 404 page
	// answers paths nothing serves.
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return nil
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.ServeHTTP(w, r, next); err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// startCaddyBinary runs the built caddy with a site holding the handler.
func startCaddyBinary(t *testing.T, bin string, fake *codextest.Server, smtpAddr string) string {
	t.Helper()
	bin, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	admin, httpPort, httpsPort, site := port(), port(), port(), port()
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	http_port %d
	https_port %d
	storage file_system %s
	skip_install_trust
	grace_period 5s
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	codex_proxy {
		vault %s
		encryption_key 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
		api_key_pepper browser-pepper-0123456789
		upstream %s
		oauth_issuer %s
		signup open
		smtp %s {
			from "UseMySub <noreply@example.com>"
			starttls off
		}
	}
}
`, admin, httpPort, httpsPort, filepath.Join(dir, "data"), site, filepath.Join(dir, "vault.db"), fake.URL, fake.IssuerURL, smtpAddr)
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuilder{}
	cmd := exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "xdg-data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "xdg-config"))
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("caddy output:\n%s", logs.String())
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", site)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("caddy exited:\n%s", logs.String())
		default:
		}
		if r, err := http.Get(base + "/login"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return base
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("caddy did not serve the dashboard:\n%s", logs.String())
	return ""
}

// lockedBuilder is a strings.Builder safe for concurrent use.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// followAuthorize opens the authorize URL as the browser would and returns
// the callback address it ends on.
func followAuthorize(t *testing.T, authURL string) string {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "http://localhost:1455/auth/callback?") {
		t.Fatalf("authorize answered %d %q", r.StatusCode, loc)
	}
	return loc
}

// mailSink is an in-process SMTP server (go-smtp) that keeps messages.
type mailSink struct {
	addr string
	msgs chan []byte
}

func newMailSink(t *testing.T) *mailSink {
	t.Helper()
	s := &mailSink{msgs: make(chan []byte, 10)}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *mailSink) NewSession(*smtp.Conn) (smtp.Session, error) { return sinkSession{s}, nil }

type sinkSession struct{ s *mailSink }

func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (ss sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err == nil {
		ss.s.msgs <- b
	}
	return err
}
func (sinkSession) Reset()        {}
func (sinkSession) Logout() error { return nil }

var magicLinkRE = regexp.MustCompile(`https?://\S+/login/confirm\?token=[A-Za-z0-9_\-]+`)

// link waits for a message and returns the magic link of its text part,
// decoding quoted-printable.
func (s *mailSink) link(t *testing.T) string {
	t.Helper()
	var raw []byte
	select {
	case raw = <-s.msgs:
	case <-time.After(30 * time.Second):
		t.Fatal("no mail arrived")
	}
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	text := textPart(t, m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), m.Body)
	l := magicLinkRE.FindString(text)
	if l == "" {
		t.Fatalf("no link in the mail:\n%s", text)
	}
	return l
}

// textPart finds the text/plain part of a (possibly multipart) body.
func textPart(t *testing.T, ctype, cte string, body io.Reader) string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		t.Fatalf("content type %q: %v", ctype, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				t.Fatalf("no text/plain part: %v", err)
			}
			if s := textPart(t, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); s != "" {
				return s
			}
		}
	}
	if mt != "text/plain" {
		return ""
	}
	if strings.EqualFold(cte, "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
