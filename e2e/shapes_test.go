package e2e

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// TestClientShapes sends, through the real binary and against the fake
// (which refuses call ids over 64 characters and status on replayed items,
// as the backend does), the request shapes that used to break: tool-call
// ids longer than the backend takes, on chat (non-stream and stream) and
// /v1/responses, Responses output items replayed with their status, a
// Cursor body with messages:[], legacy functions, and the deepest tool
// schema the proxy accepts, whose echo the fake sends back.
func TestClientShapes(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{})
	p, key := startProxy(t, fake, "")
	c := p.openaiClient(t, p.httpURL, key, nil)

	// A call id another provider or an agent framework made up.
	longID := "toolu_bdrk_01" + strings.Repeat("Kq7", 25) + "-agent-session-0042"
	readFile := openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
		Name: "read_file", Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{"path": map[string]any{"type": "string"}}},
	})
	chatHistory := func(nonce string) openai.ChatCompletionNewParams {
		asst := openai.ChatCompletionAssistantMessageParam{ToolCalls: []openai.ChatCompletionMessageToolCallUnionParam{{
			OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{ID: longID,
				Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: "read_file", Arguments: `{"path":"a.txt"}`}},
		}}}
		return openai.ChatCompletionNewParams{Model: "gpt-5.5", Tools: []openai.ChatCompletionToolUnionParam{readFile},
			Messages: []openai.ChatCompletionMessageParamUnion{
				openai.UserMessage("read a.txt"),
				{OfAssistant: &asst},
				openai.ToolMessage("contents of a", longID),
				openai.UserMessage("now b.txt " + nonce + " " + codextest.Marker(codextest.ScenarioToolCall)),
			}}
	}
	// upstreamCallIDs returns the call ids the fake received in the request
	// carrying nonce, checking each fits the backend's limit.
	upstreamCallIDs := func(t *testing.T, nonce string) []string {
		t.Helper()
		up := upstreamRequest(t, fake, nonce)
		if strings.Contains(string(up.Body), longID) {
			t.Fatalf("the long id reached the upstream: %s", up.Body)
		}
		var ids []string
		input, _ := up.JSON["input"].([]any)
		for i, it := range input {
			m, _ := it.(map[string]any)
			if _, ok := m["status"]; ok && m["type"] != "local_shell_call" {
				t.Errorf("input[%d] carries status upstream: %v", i, m)
			}
			if id, ok := m["call_id"].(string); ok {
				if len(id) > 64 {
					t.Errorf("input[%d].call_id is %d characters", i, len(id))
				}
				ids = append(ids, id)
			}
		}
		return ids
	}
	var shortID string // what longID became upstream; the same everywhere
	sameShort := func(t *testing.T, ids []string) {
		t.Helper()
		if len(ids) < 2 || ids[0] != ids[1] {
			t.Fatalf("call and output not paired upstream: %v", ids)
		}
		if shortID == "" {
			shortID = ids[0]
		}
		if ids[0] != shortID {
			t.Fatalf("%s maps to %s here and %s before", longID, ids[0], shortID)
		}
	}

	t.Run("long call id on chat, non-stream", func(t *testing.T) {
		res, err := c.Chat.Completions.New(withTimeout(t), chatHistory("lid-chat-nonce"))
		if err != nil {
			t.Fatal(err)
		}
		calls := res.Choices[0].Message.ToolCalls
		if res.Choices[0].FinishReason != "tool_calls" || len(calls) != 1 || calls[0].Function.Name != "read_file" {
			t.Fatalf("answer: %s", res.RawJSON())
		}
		sameShort(t, upstreamCallIDs(t, "lid-chat-nonce"))
		if strings.Contains(res.RawJSON(), shortID) {
			t.Fatalf("the client saw the upstream's id: %s", res.RawJSON())
		}

		// Next turn: the new call's result and the old long-id exchange.
		next := chatHistory("lid-chat2-nonce")
		next.Messages = append(next.Messages, res.Choices[0].Message.ToParam(), openai.ToolMessage("contents of b", calls[0].ID),
			openai.UserMessage("thanks lid-chat2-nonce"))
		if _, err := c.Chat.Completions.New(withTimeout(t), next); err != nil {
			t.Fatal(err)
		}
		sameShort(t, upstreamCallIDs(t, "lid-chat2-nonce"))
	})

	t.Run("long call id on chat, stream", func(t *testing.T) {
		s := c.Chat.Completions.NewStreaming(withTimeout(t), chatHistory("lid-stream-nonce"))
		acc := openai.ChatCompletionAccumulator{}
		var raw strings.Builder
		for s.Next() {
			acc.AddChunk(s.Current())
			raw.WriteString(s.Current().RawJSON())
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if acc.Choices[0].FinishReason != "tool_calls" || len(acc.Choices[0].Message.ToolCalls) != 1 {
			t.Fatalf("stream: %+v", acc.Choices[0])
		}
		sameShort(t, upstreamCallIDs(t, "lid-stream-nonce"))
		if strings.Contains(raw.String(), shortID) {
			t.Fatalf("the client saw the upstream's id: %s", raw.String())
		}
	})

	t.Run("responses: long call id and replayed items with status", func(t *testing.T) {
		tools := []responses.ToolUnionParam{{OfFunction: &responses.FunctionToolParam{
			Name: "read_file", Parameters: map[string]any{"type": "object", "properties": map[string]any{"path": map[string]any{"type": "string"}}},
		}}}
		first, err := c.Responses.New(withTimeout(t), responses.ResponseNewParams{
			Model: "gpt-5.5", Tools: tools,
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("read a.txt " + codextest.Marker(codextest.ScenarioReasoningToolCall))},
		})
		if err != nil {
			t.Fatal(err)
		}
		// Replay the output the SDK's way (ToParam keeps id and status),
		// after an earlier exchange whose call id is too long.
		longCall := responses.ResponseInputItemParamOfFunctionCall(`{"path":"z"}`, longID, "read_file")
		longCall.OfFunctionCall.Status = responses.ResponseFunctionToolCallStatusCompleted
		longOut := responses.ResponseInputItemParamOfFunctionCallOutput("contents of z")
		longOut.OfFunctionCallOutput.CallID = openai.String(longID)
		input := responses.ResponseInputParam{
			responses.ResponseInputItemParamOfMessage("read z", responses.EasyInputMessageRoleUser),
			longCall, longOut,
			responses.ResponseInputItemParamOfMessage("read a.txt", responses.EasyInputMessageRoleUser),
		}
		var callID string
		for _, it := range first.Output {
			switch v := it.AsAny().(type) {
			case responses.ResponseReasoningItem:
				r := v.ToParam()
				input = append(input, responses.ResponseInputItemUnionParam{OfReasoning: &r})
			case responses.ResponseFunctionToolCall:
				fc := v.ToParam() // sends the item as it came, status included
				if v.Status == "" {
					t.Fatalf("the fake's function call has no status to replay: %s", it.RawJSON())
				}
				input = append(input, responses.ResponseInputItemUnionParam{OfFunctionCall: &fc})
				callID = v.CallID
			}
		}
		if callID == "" {
			t.Fatalf("first answer has no call: %s", first.RawJSON())
		}
		out := responses.ResponseInputItemParamOfFunctionCallOutput("contents of a")
		out.OfFunctionCallOutput.CallID = openai.String(callID)
		msg := responses.ResponseOutputMessageParam{ID: "msg_prev", Status: responses.ResponseOutputMessageStatusCompleted,
			Content: []responses.ResponseOutputMessageContentUnionParam{{OfOutputText: &responses.ResponseOutputTextParam{Text: "Read it."}}}}
		input = append(input, out, responses.ResponseInputItemUnionParam{OfOutputMessage: &msg})

		params := func(nonce string) responses.ResponseNewParams {
			turn := append(responses.ResponseInputParam{}, input...)
			turn = append(turn, responses.ResponseInputItemParamOfMessage("and b.txt "+nonce+" "+codextest.Marker(codextest.ScenarioToolCall), responses.EasyInputMessageRoleUser))
			return responses.ResponseNewParams{Model: "gpt-5.5", Tools: tools, Input: responses.ResponseNewParamsInputUnion{OfInputItemList: turn}}
		}
		second, err := c.Responses.New(withTimeout(t), params("lid-resp-nonce"))
		if err != nil {
			t.Fatal(err)
		}
		if second.Status != "completed" || len(second.Output) == 0 || strings.Contains(second.RawJSON(), shortID) {
			t.Fatalf("second answer: %s", second.RawJSON())
		}
		ids := upstreamCallIDs(t, "lid-resp-nonce")
		sameShort(t, ids)

		st := c.Responses.NewStreaming(withTimeout(t), params("lid-resps-nonce"))
		var completed bool
		for st.Next() {
			ev := st.Current()
			if strings.Contains(ev.RawJSON(), shortID) {
				t.Fatalf("the client saw the upstream's id: %s", ev.RawJSON())
			}
			completed = completed || ev.Type == "response.completed"
		}
		if err := st.Err(); err != nil || !completed {
			t.Fatalf("stream: completed=%v err=%v", completed, err)
		}
		sameShort(t, upstreamCallIDs(t, "lid-resps-nonce"))
	})

	t.Run("cursor body with messages:[] and replayed status", func(t *testing.T) {
		body := `{"model":"gpt-5.5","messages":[],"stream":false,"input":[
			{"role":"user","content":"run it"},
			{"type":"function_call","id":"fc_1","status":"completed","call_id":"` + longID + `","name":"run","arguments":"{}"},
			{"type":"function_call_output","call_id":"` + longID + `","output":"ok"},
			{"type":"message","id":"msg_1","role":"assistant","status":"completed","content":[{"type":"output_text","text":"Ran."}]},
			{"role":"user","content":"again cursor-nonce"}],
			"tools":[{"type":"function","name":"run","parameters":{"type":"object","properties":{}}}]}`
		resp := postJSON(t, p.httpURL+"/v1/chat/completions", key, body)
		if resp.status != http.StatusOK {
			t.Fatalf("%d: %s", resp.status, resp.body)
		}
		sameShort(t, upstreamCallIDs(t, "cursor-nonce"))
	})

	t.Run("legacy functions get a legacy answer", func(t *testing.T) {
		// The deprecated legacy fields are what this subtest is about.
		params := chatParams("weather? " + codextest.Marker(codextest.ScenarioToolCall))
		//lint:ignore SA1019 legacy functions on purpose
		params.Functions = []openai.ChatCompletionNewParamsFunction{{Name: "get_weather",
			Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}}}
		res, err := c.Chat.Completions.New(withTimeout(t), params)
		if err != nil {
			t.Fatal(err)
		}
		ch := res.Choices[0]
		//lint:ignore SA1019 the legacy answer on purpose
		fc := ch.Message.FunctionCall
		if ch.FinishReason != "function_call" || fc.Name != "get_weather" || fc.Arguments == "" || len(ch.Message.ToolCalls) != 0 {
			t.Fatalf("answer: %s", res.RawJSON())
		}
	})

	t.Run("deepest accepted schema survives its echo; one level more is a 400", func(t *testing.T) {
		const limit = 497 // translate.MaxRequestDepth
		deep := func(depth int) string {
			// body(1) tools(2) tool(3) function(4) parameters(5…)
			n := depth - 4
			schema := strings.Repeat(`{"type":"array","items":`, n-1) + `{"type":"string"}` + strings.Repeat(`}`, n-1)
			return `{"model":"gpt-5.5","stream":true,"messages":[{"role":"user","content":"deep-nonce ` + codextest.Marker(codextest.ScenarioText) +
				`"}],"tools":[{"type":"function","function":{"name":"f","parameters":` + schema + `}}]}`
		}
		resp := postJSON(t, p.httpURL+"/v1/chat/completions", key, deep(limit))
		if resp.status != http.StatusOK || !strings.Contains(string(resp.body), `"finish_reason":"stop"`) ||
			!strings.HasSuffix(string(resp.body), "data: [DONE]\n\n") || strings.Contains(string(resp.body), "stream_incomplete") {
			t.Fatalf("%d: %s", resp.status, resp.body)
		}
		up := upstreamRequest(t, fake, "deep-nonce")
		if _, ok := up.JSON["tools"]; !ok {
			t.Fatal("the deep tool did not reach the upstream")
		}
		resp = postJSON(t, p.httpURL+"/v1/chat/completions", key, deep(limit+1))
		var e struct {
			Error struct{ Message, Type, Code string } `json:"error"`
		}
		if resp.status != http.StatusBadRequest || json.Unmarshal(resp.body, &e) != nil || e.Error.Type != "invalid_request_error" ||
			!strings.Contains(e.Error.Message, strconv.Itoa(limit)) {
			t.Fatalf("%d: %s", resp.status, resp.body)
		}
	})
}
