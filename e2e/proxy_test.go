package e2e

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

func chatParams(text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    "gpt-5.5",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
	}
}

// streamText runs one streaming chat and returns the accumulated completion.
func streamText(ctx context.Context, c openai.Client, text string) (openai.ChatCompletion, error) {
	s := c.Chat.Completions.NewStreaming(ctx, chatParams(text))
	acc := openai.ChatCompletionAccumulator{}
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	return acc.ChatCompletion, s.Err()
}

func TestChatOverHTTPSAndHTTP(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{})
	p, key := startProxy(t, fake, "")

	for name, c := range map[string]openai.Client{
		"https": p.openaiClient(t, p.httpsURL, key, p.httpsClient(t)),
		"http":  p.openaiClient(t, p.httpURL, key, nil),
	} {
		t.Run(name, func(t *testing.T) {
			cc, err := streamText(withTimeout(t), c, "hello "+codextest.Marker(codextest.ScenarioReasoningText))
			if err != nil {
				t.Fatal(err)
			}
			if cc.Choices[0].Message.Content == "" || cc.Choices[0].FinishReason != "stop" {
				t.Fatalf("stream: %+v", cc)
			}
			params := chatParams("call a tool " + codextest.Marker(codextest.ScenarioParallelToolCalls))
			params.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
				Name: "get_weather", Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{}},
			})}
			res, err := c.Chat.Completions.New(withTimeout(t), params)
			if err != nil {
				t.Fatal(err)
			}
			if res.Choices[0].FinishReason != "tool_calls" || len(res.Choices[0].Message.ToolCalls) < 2 {
				t.Fatalf("non-stream tool calls: %s", res.RawJSON())
			}
		})
	}

	bad := p.openaiClient(t, p.httpURL, "cpk_wrong", nil)
	_, err := bad.Chat.Completions.New(withTimeout(t), chatParams("x"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad key: %v", err)
	}
}

// TestReloadKeepsStreamsAlive: caddy reload while streams are in flight;
// none may fail, and the vault stays shared across the two configs.
func TestReloadKeepsStreamsAlive(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{SlowDelay: 150 * time.Millisecond})
	p, key := startProxy(t, fake, "")
	c := p.openaiClient(t, p.httpURL, key, nil)

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc, err := streamText(withTimeout(t), c, "slow "+codextest.Marker(codextest.ScenarioSlow))
			if err == nil && (len(cc.Choices) == 0 || cc.Choices[0].FinishReason == "") {
				err = errors.New("stream ended without a finish reason")
			}
			errs <- err
		}()
	}
	time.Sleep(300 * time.Millisecond)
	// Change the config so the reload is real.
	cfg, _ := os.ReadFile(p.caddyfile)
	if err := os.WriteFile(p.caddyfile, []byte(strings.ReplaceAll(string(cfg), "keepalive 200ms", "keepalive 250ms")), 0o600); err != nil {
		t.Fatal(err)
	}
	reload := exec.Command(p.bin, "reload", "--config", p.caddyfile, "--adapter", "caddyfile", "--address", p.admin)
	reload.Env = p.cmd.Env
	if out, err := reload.CombinedOutput(); err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a stream failed across the reload: %v", err)
		}
	}
	// And the new config serves, on a new connection: the old server closes
	// the idle ones its streams used, and a request sent on one at that
	// moment is reset (clients retry it; this one has retries off).
	fresh := p.openaiClient(t, p.httpURL, key, &http.Client{Transport: &http.Transport{}})
	if _, err := streamText(withTimeout(t), fresh, "after reload"); err != nil {
		t.Fatal(err)
	}
}
