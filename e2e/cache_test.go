package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// TestCacheHitRateClineShaped: a chat conversation shaped like Cline's
// (the same long system prompt, the history growing each turn, streamed
// with include_usage) through the built binary gets cached input tokens
// from its second turn on, and GET /v1/usage shows the hit rate per day
// and model.
func TestCacheHitRateClineShaped(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{})
	p, key := startProxy(t, fake, "")
	c := p.openaiClient(t, p.httpURL, key, nil)

	system := openai.SystemMessage("You are Cline, a highly skilled software engineer. ==== TOOL USE ==== You have access to a set of tools …")
	history := []openai.ChatCompletionMessageParamUnion{system}
	var cached []int64
	for i, ask := range []string{"Create a file hello.go", "Now add a test", "Run the tests"} {
		history = append(history, openai.UserMessage(ask))
		s := c.Chat.Completions.NewStreaming(withTimeout(t), openai.ChatCompletionNewParams{
			Model: "gpt-5.5", Messages: history,
			StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
		})
		acc := openai.ChatCompletionAccumulator{}
		for s.Next() {
			acc.AddChunk(s.Current())
		}
		if err := s.Err(); err != nil {
			t.Fatalf("turn %d: %v", i+1, err)
		}
		cached = append(cached, acc.Usage.PromptTokensDetails.CachedTokens)
		history = append(history, openai.AssistantMessage(acc.Choices[0].Message.Content))
	}
	if cached[0] != 0 || cached[1] == 0 || cached[2] == 0 {
		t.Fatalf("cached tokens per turn %v: want none on the first, some from the second", cached)
	}

	var u struct {
		Cache struct {
			InputTokens  int64   `json:"input_tokens"`
			CachedTokens int64   `json:"cached_tokens"`
			HitRate      float64 `json:"hit_rate"`
			ByDay        []struct {
				Day     string  `json:"day"`
				HitRate float64 `json:"hit_rate"`
			} `json:"by_day"`
			ByModel []struct {
				Model    string `json:"model"`
				Requests int64  `json:"requests"`
			} `json:"by_model"`
		} `json:"cache"`
	}
	// The request log is written behind the requests: poll briefly.
	var body []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequestWithContext(withTimeout(t), http.MethodGet, p.httpURL+"/v1/usage", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(body, &u); err != nil {
			t.Fatalf("/v1/usage: %v %s", err, body)
		}
		if len(u.Cache.ByModel) == 1 && u.Cache.ByModel[0].Requests == 3 || time.Now().After(deadline) {
			break
		}
	}
	if u.Cache.CachedTokens != cached[1]+cached[2] || u.Cache.HitRate <= 0 || u.Cache.HitRate >= 1 ||
		len(u.Cache.ByDay) != 1 || u.Cache.ByDay[0].HitRate != u.Cache.HitRate || u.Cache.ByModel[0].Model != "gpt-5.5" {
		t.Fatalf("/v1/usage cache: %s", body)
	}
}
