package translate

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
)

// This file serves clients that asked for stream:false. The upstream always
// streams; the events are collected into one response. Output items come from
// response.output_item.done (the authoritative copies) because
// response.completed may carry an empty output (docs/protocol.md#empty-output); items that never got
// their done event are rebuilt from their deltas.

// outItem is an output item decoded for aggregation.
type outItem struct {
	Type      string `json:"type"`
	ID        string `json:"id,omitempty"`
	Role      string `json:"role,omitempty"`
	Status    string `json:"status,omitempty"`
	CallID    string `json:"call_id,omitempty"`
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments,omitempty"`
	Input     string `json:"input,omitempty"`
	Content   []struct {
		Type    string `json:"type"`
		Text    string `json:"text,omitempty"`
		Refusal string `json:"refusal,omitempty"`
	} `json:"content,omitempty"`
	Summary []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"summary,omitempty"`
}

type collectedItem struct {
	index   int64
	id      string
	idRaw   []byte          // the raw JSON id last seen for it
	raw     json.RawMessage // from output_item.done
	partial outItem         // from output_item.added and deltas
	text    strings.Builder
	args    strings.Builder
	summary []strings.Builder
}

// collector gathers one response's output from its events.
type collector struct {
	items    []*collectedItem
	response json.RawMessage // the terminal event's response object
	res      StreamResult
	finished bool
	scratch  []byte // decoded delta, reused
}

func (c *collector) item(e upstreamEvent) *collectedItem {
	// Deltas name their item with the same raw id every time: compare the
	// bytes first, so the hot path decodes nothing.
	if len(e.itemID) > 0 {
		for _, it := range c.items {
			if it.idRaw != nil && string(it.idRaw) == string(e.itemID) {
				return it
			}
		}
	}
	id, _ := unquote(e.itemID)
	for _, it := range c.items {
		if id != "" && it.id == id {
			it.idRaw = append(it.idRaw[:0], e.itemID...)
			return it
		}
	}
	for _, it := range c.items {
		if id != "" && it.id == id || id == "" && e.hasOutputIdx && it.index == e.outputIndex {
			return it
		}
	}
	it := &collectedItem{index: e.outputIndex, id: id}
	if id != "" {
		it.idRaw = append([]byte(nil), e.itemID...)
	}
	c.items = append(c.items, it)
	return it
}

// appendDelta appends the decoded JSON string raw to b, with no string
// allocated in between; it reports false for what unquote would refuse.
func (c *collector) appendDelta(b *strings.Builder, raw []byte) bool {
	if !isJSONString(raw) {
		return false
	}
	c.scratch = appendUnescaped(c.scratch[:0], raw[1:len(raw)-1])
	b.Write(c.scratch)
	return true
}

// observe takes one event; it reports whether the stream reached its end.
func (c *collector) observe(ev Event) bool {
	if c.finished {
		return true
	}
	e, ok := parseEvent(ev)
	if !ok {
		return false
	}
	switch string(e.typ) {
	case "response.output_item.added", "response.output_item.done":
		var item outItem
		if string(e.typ) == "response.output_item.done" {
			// Only the type is needed of the done copy, which holds the
			// whole output (tens of KB of text): checked by the scanner.
			if doneItemType(e.item) == "" {
				return false
			}
		} else if json.Unmarshal(e.item, &item) != nil || item.Type == "" {
			return false
		}
		e.itemID = field(e.item, "id")
		it := c.item(e)
		it.index = e.outputIndex
		if string(e.typ) == "response.output_item.done" {
			it.raw = append(json.RawMessage(nil), e.item...)
			// The done copy is authoritative: the deltas kept to rebuild
			// the item without it are no longer needed.
			it.text, it.args, it.summary = strings.Builder{}, strings.Builder{}, nil
		} else {
			it.partial = item
		}
	case "response.output_text.delta", "response.refusal.delta":
		if isJSONString(e.delta) {
			c.appendDelta(&c.item(e).text, e.delta)
		}
	case "response.function_call_arguments.delta", "response.custom_tool_call_input.delta":
		if isJSONString(e.delta) {
			c.appendDelta(&c.item(e).args, e.delta)
		}
	case "response.reasoning_summary_text.delta", "response.reasoning_text.delta":
		if s, ok := unquote(e.delta); ok {
			it := c.item(e)
			for int64(len(it.summary)) <= e.summaryIndex && e.summaryIndex < 1024 {
				it.summary = append(it.summary, strings.Builder{})
			}
			if e.summaryIndex >= 0 && e.summaryIndex < int64(len(it.summary)) {
				it.summary[e.summaryIndex].WriteString(s)
			}
		}
	case "response.created", "response.in_progress":
		if id, ok := unquote(field(e.response, "id")); ok {
			c.res.ResponseID = id
		}
	case "response.completed", "response.incomplete":
		c.finished = true
		c.response = append(json.RawMessage(nil), e.response...)
		c.res = completedResult(e, c.res)
	case "response.failed", "error":
		c.finished = true
		c.res.Err = failureFromEvent(e)
	}
	return c.finished
}

// run reads the whole stream.
func (c *collector) run(r io.Reader) {
	rd := NewReader(r)
	defer func() { c.res.OutputBytes = rd.DeltaBytes() }()
	for !c.finished {
		ev, err := rd.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				c.res.Err = errIncomplete()
			} else {
				c.res.Err = &Error{Status: http.StatusBadGateway, Type: "server_error",
					Code: "upstream_read_error", Message: "reading the upstream stream failed: " + err.Error()}
			}
			return
		}
		c.observe(ev)
	}
}

// outputItems returns the response's items in output order: the completed
// event's output when it has one, otherwise the collected items.
func (c *collector) outputItems() []json.RawMessage {
	var fromCompleted []json.RawMessage
	if out := field(c.response, "output"); len(out) > 0 && !forEachElement(out, func(v []byte) bool {
		fromCompleted = append(fromCompleted, v)
		return true
	}) {
		fromCompleted = nil // not an array: the collected items are the output
	}
	if len(fromCompleted) > 0 {
		return fromCompleted
	}
	sort.SliceStable(c.items, func(i, j int) bool { return c.items[i].index < c.items[j].index })
	items := make([]json.RawMessage, 0, len(c.items))
	for _, it := range c.items {
		if it.raw != nil {
			items = append(items, it.raw)
			continue
		}
		if raw := it.rebuild(); raw != nil {
			items = append(items, raw)
		}
	}
	return items
}

// rebuild makes an item from its added event and deltas.
func (it *collectedItem) rebuild() json.RawMessage {
	p := it.partial
	switch p.Type {
	case "message":
		if it.text.Len() > 0 {
			p.Content = p.Content[:0]
			p.Content = append(p.Content, struct {
				Type    string `json:"type"`
				Text    string `json:"text,omitempty"`
				Refusal string `json:"refusal,omitempty"`
			}{Type: "output_text", Text: it.text.String()})
		}
	case "function_call":
		if it.args.Len() > 0 {
			p.Arguments = it.args.String()
		}
	case "custom_tool_call":
		if it.args.Len() > 0 {
			p.Input = it.args.String()
		}
	case "reasoning":
		if len(it.summary) > 0 {
			p.Summary = p.Summary[:0]
			for i := range it.summary {
				p.Summary = append(p.Summary, struct {
					Type string `json:"type"`
					Text string `json:"text"`
				}{"summary_text", it.summary[i].String()})
			}
		}
	case "":
		return nil
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return nil
	}
	return raw
}

type chatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   chatUsage    `json:"usage"`
}

type chatChoice struct {
	Index        int         `json:"index"`
	Message      chatMessage `json:"message"`
	Logprobs     *struct{}   `json:"logprobs"`
	FinishReason string      `json:"finish_reason"`
}

type chatMessage struct {
	Role             string            `json:"role"`
	Content          *string           `json:"content"`
	Refusal          *string           `json:"refusal"`
	ReasoningContent string            `json:"reasoning_content,omitempty"`
	ToolCalls        []chatToolCallOut `json:"tool_calls,omitempty"`
	FunctionCall     *chatFunctionCall `json:"function_call,omitempty"`
	// Images are generated images as content parts (chat_images.go).
	Images []chatImagePart `json:"images,omitempty"`
}

// chatFunctionCall is the legacy single call of a "functions" request.
type chatFunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type chatToolCallOut struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chatUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

// AggregateChat reads a whole upstream stream and returns one chat.completion
// body. When the upstream failed, the body is nil and the result's Err says
// why: a failure is never a 200 with empty content.
func AggregateChat(r io.Reader, opts ChatStreamOptions) ([]byte, StreamResult) {
	var c collector
	c.run(r)
	if c.res.Err != nil {
		c.res.Err = opts.CallIDs.RestoreError(c.res.Err)
		return nil, c.res
	}
	if opts.ID == "" {
		opts.ID = NewChatCompletionID()
	}
	if opts.Created == 0 {
		opts.Created = time.Now().Unix()
	}
	var msg chatMessage
	msg.Role = "assistant"
	var text, refusal, reasoning strings.Builder
	for _, raw := range c.outputItems() {
		var it outItem
		if json.Unmarshal(raw, &it) != nil {
			continue
		}
		switch it.Type {
		case "message":
			for _, part := range it.Content {
				switch part.Type {
				case "output_text":
					text.WriteString(part.Text)
				case "refusal":
					refusal.WriteString(part.Refusal)
				}
			}
		case "reasoning":
			for _, s := range it.Summary {
				if s.Text == "" {
					continue
				}
				if reasoning.Len() > 0 {
					reasoning.WriteString("\n\n")
				}
				reasoning.WriteString(s.Text)
			}
		case "image_generation_call":
			if p, ok := imageCallPart(raw); ok {
				msg.Images = append(msg.Images, p)
			}
		case "function_call", "custom_tool_call":
			var call chatToolCallOut
			call.ID, call.Type = opts.CallIDs.Restore(it.CallID), "function"
			call.Function.Name = opts.ToolNames.Restore(it.Name)
			call.Function.Arguments = it.Arguments
			if it.Type == "custom_tool_call" {
				call.Function.Arguments = it.Input
			}
			switch {
			case !opts.LegacyFunctions:
				msg.ToolCalls = append(msg.ToolCalls, call)
			case msg.FunctionCall == nil:
				// The legacy shape holds one call; later ones are not sent.
				msg.FunctionCall = &chatFunctionCall{Name: call.Function.Name, Arguments: call.Function.Arguments}
			}
		}
	}
	if text.Len() > 0 || len(msg.ToolCalls) == 0 && msg.FunctionCall == nil && refusal.Len() == 0 {
		s := text.String()
		msg.Content = &s
	}
	if refusal.Len() > 0 {
		s := refusal.String()
		msg.Refusal = &s
	}
	msg.ReasoningContent = reasoning.String()
	finish := c.res.FinishReason
	switch {
	case finish != "stop":
	case len(msg.ToolCalls) > 0:
		finish = "tool_calls"
	case msg.FunctionCall != nil:
		finish = "function_call"
	}
	c.res.FinishReason = finish
	u := c.res.Usage
	out := chatCompletion{
		ID: opts.ID, Object: "chat.completion", Created: opts.Created, Model: opts.Model,
		Choices: []chatChoice{{Index: 0, Message: msg, FinishReason: finish}},
	}
	out.Usage.PromptTokens, out.Usage.CompletionTokens, out.Usage.TotalTokens = u.InputTokens, u.OutputTokens, u.TotalTokens
	out.Usage.PromptTokensDetails.CachedTokens = u.CachedTokens
	out.Usage.CompletionTokensDetails.ReasoningTokens = u.ReasoningTokens
	body, err := json.Marshal(out)
	if err != nil {
		c.res.Err = &Error{Status: http.StatusInternalServerError, Type: "server_error", Message: "encoding the response failed"}
		return nil, c.res
	}
	return body, c.res
}

// AggregateResponses reads a whole upstream stream and returns the final
// Response object, with its output rebuilt when the upstream sent it empty
// and shortened tool names and call ids restored.
func AggregateResponses(r io.Reader, names ToolNames, ids CallIDs) ([]byte, StreamResult) {
	var c collector
	c.run(r)
	return c.responsesBody(names, ids)
}

// responsesBody is the Responses API object of what c collected.
func (c *collector) responsesBody(names ToolNames, ids CallIDs) ([]byte, StreamResult) {
	if c.res.Err != nil {
		c.res.Err = ids.RestoreError(c.res.Err)
		return nil, c.res
	}
	items := c.outputItems()
	body, ok := appendResponseObject(nil, c.response, items)
	if !ok {
		var err error
		if body, err = responseObjectJSON(c.response, items); err != nil {
			c.res.Err = &Error{Status: http.StatusInternalServerError, Type: "server_error", Message: "encoding the response failed"}
			return nil, c.res
		}
	}
	return ids.restoreIn(names.restoreIn(body)), c.res
}

// responseObjectJSON is the terminal event's response object with output
// replaced by items, as encoding/json writes it (keys sorted, values
// compacted, <, > and & escaped); a response that is not an object counts
// as an empty one. appendResponseObject is the same without reflection.
func responseObjectJSON(response []byte, items []json.RawMessage) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(response, &obj); err != nil || obj == nil {
		obj = map[string]json.RawMessage{}
	}
	if items == nil {
		items = []json.RawMessage{}
	}
	output, _ := json.Marshal(items)
	obj["output"] = output
	return json.Marshal(obj)
}
