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

	wantCacheInUsage(t, p.httpURL, key, 3, cached[1]+cached[2])
}

// wantCacheInUsage polls GET /v1/usage until it counts requests requests of
// gpt-5.5 today and checks its cache figures: cached tokens in all, a hit
// rate strictly between 0 and 1, the same per day.
func wantCacheInUsage(t *testing.T, base, key string, requests, cached int64) {
	t.Helper()
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
		req, _ := http.NewRequestWithContext(withTimeout(t), http.MethodGet, base+"/v1/usage", nil)
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
		if len(u.Cache.ByModel) == 1 && u.Cache.ByModel[0].Requests == requests || time.Now().After(deadline) {
			break
		}
	}
	if u.Cache.CachedTokens != cached || u.Cache.HitRate <= 0 || u.Cache.HitRate >= 1 ||
		len(u.Cache.ByDay) != 1 || u.Cache.ByDay[0].HitRate != u.Cache.HitRate || u.Cache.ByModel[0].Model != "gpt-5.5" {
		t.Fatalf("/v1/usage cache: %s", body)
	}
}

// TestCacheHitRateCursorShaped: a conversation shaped like Cursor's (a
// Responses-style input on /v1/chat/completions with messages:[], the
// whole history resent each turn) gets cached tokens from its second turn
// on, and the hit rate shows in /v1/usage.
func TestCacheHitRateCursorShaped(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{})
	p, key := startProxy(t, fake, "")
	input := []map[string]any{{"role": "system", "content": "You are a powerful agentic AI coding assistant, powered by GPT-5.5. You operate in Cursor."}}
	var cached []int64
	for i, ask := range []string{"Explain main.go", "Refactor it", "Add docs"} {
		input = append(input, map[string]any{"role": "user", "content": ask})
		body, _ := json.Marshal(map[string]any{"model": "gpt-5.5", "messages": []any{}, "stream": false, "input": input})
		resp := postJSON(t, p.httpURL+"/v1/chat/completions", key, string(body))
		var out struct {
			Choices []struct {
				Message struct {
					Content string `json:"content"`
				} `json:"message"`
			} `json:"choices"`
			Usage struct {
				PromptTokensDetails struct {
					CachedTokens int64 `json:"cached_tokens"`
				} `json:"prompt_tokens_details"`
			} `json:"usage"`
		}
		if resp.status != http.StatusOK || json.Unmarshal(resp.body, &out) != nil || len(out.Choices) == 0 {
			t.Fatalf("turn %d: %d %s", i+1, resp.status, resp.body)
		}
		cached = append(cached, out.Usage.PromptTokensDetails.CachedTokens)
		input = append(input, map[string]any{"type": "message", "role": "assistant", "content": []any{map[string]any{"type": "output_text", "text": out.Choices[0].Message.Content}}})
	}
	if cached[0] != 0 || cached[1] == 0 || cached[2] == 0 {
		t.Fatalf("cached tokens per turn %v: want none on the first, some from the second", cached)
	}
	wantCacheInUsage(t, p.httpURL, key, 3, cached[1]+cached[2])
}
