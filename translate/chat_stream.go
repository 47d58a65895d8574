package translate

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"
)

// ChatStreamOptions describes the chat completion a stream is translated into.
type ChatStreamOptions struct {
	// ID is the chat completion id on every chunk; a random "chatcmpl-" id
	// when empty.
	ID string
	// Model is the client-facing model name echoed on every chunk.
	Model string
	// Created is the Unix time on every chunk; now when zero.
	Created int64
	// IncludeUsage adds the usage chunk (empty choices) before [DONE], as
	// OpenAI does for stream_options.include_usage.
	IncludeUsage bool
	// ToolNames restores tool names the request mapping shortened.
	ToolNames ToolNames
	// CallIDs restores tool-call ids the request mapping shortened.
	CallIDs CallIDs
	// LegacyFunctions answers in the legacy function-calling shape
	// (delta.function_call, finish_reason "function_call") for requests
	// that declared "functions". That shape holds one call: any further
	// call of the response is not sent.
	LegacyFunctions bool
}

// StreamResult is what a translated stream amounted to, for the request log
// and for choosing a status when nothing was sent yet.
type StreamResult struct {
	// ResponseID is the upstream response id.
	ResponseID string
	// Completed is true when the upstream sent a terminal success event
	// (response.completed or response.incomplete).
	Completed bool
	// FinishReason is the chat finish reason sent.
	FinishReason string
	// Usage is the token accounting from the terminal event.
	Usage Usage
	// OutputBytes is the generated output the stream carried (see
	// Reader.DeltaBytes): what a stream that ends without Usage is charged
	// for, with EstimateTokens.
	OutputBytes int64
	// Err is set when the stream failed.
	Err *Error
}

// ChatStream translates Codex Responses events into chat.completion.chunk
// events. It is not safe for concurrent use; one per response.
type ChatStream struct {
	opts      ChatStreamOptions
	prefix    []byte // `data: {"id":…,"choices":[{"index":0,"delta":`
	suffix    []byte // `,"finish_reason":null}]…}` + "\n\n"
	head      []byte // `data: {"id":…,"model":…` for the usage chunk
	roleSent  bool
	done      bool
	calls     []chatToolCall
	textItems [][]byte // message items whose text arrived as deltas
	reasoning reasoningState
	res       StreamResult
}

type chatToolCall struct {
	itemID      []byte
	outputIndex int64
	index       int
	argsSent    bool
	skip        bool // a second call in a legacy answer: not sent
}

// reasoningState tracks summary paragraphs so they are separated once.
type reasoningState struct {
	sent      bool
	lastItem  []byte
	lastIndex int64
	items     [][]byte // reasoning items whose summary arrived as deltas
}

// NewChatStream returns a translator for one response.
func NewChatStream(opts ChatStreamOptions) *ChatStream {
	if opts.ID == "" {
		opts.ID = NewChatCompletionID()
	}
	if opts.Created == 0 {
		opts.Created = time.Now().Unix()
	}
	s := &ChatStream{opts: opts}
	head := []byte(`data: {"id":`)
	head = appendQuoted(head, opts.ID)
	head = append(head, `,"object":"chat.completion.chunk","created":`...)
	head = strconv.AppendInt(head, opts.Created, 10)
	head = append(head, `,"model":`...)
	head = appendQuoted(head, opts.Model)
	s.head = head
	s.prefix = append(append([]byte(nil), head...), `,"choices":[{"index":0,"delta":`...)
	s.suffix = []byte(`,"finish_reason":null}]`)
	if opts.IncludeUsage {
		s.suffix = append(s.suffix, `,"usage":null`...)
	}
	s.suffix = append(s.suffix, "}\n\n"...)
	return s
}

// NewChatCompletionID returns a random "chatcmpl-" id.
func NewChatCompletionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "chatcmpl-" + hex.EncodeToString(b[:])
}

// Done reports whether the stream reached its end ([DONE] was appended).
func (s *ChatStream) Done() bool { return s.done }

// Started reports whether any chunk was produced yet. Until then a failure
// can still be answered with a real HTTP status instead of an in-stream error.
func (s *ChatStream) Started() bool { return s.roleSent }

// Result returns what the stream amounted to so far.
func (s *ChatStream) Result() StreamResult { return s.res }

// Translate appends the chunks for one upstream event to dst. Events after the
// end of the stream, unknown events and malformed events add nothing.
func (s *ChatStream) Translate(dst []byte, ev Event) []byte {
	if s.done {
		return dst
	}
	e, ok := parseEvent(ev)
	if !ok {
		return dst
	}
	switch string(e.typ) {
	case "response.output_text.delta":
		if isStringToken(e.delta) {
			s.markText(e.itemID)
			dst = s.appendDelta(dst, `{"content":`, e.delta, `}`)
		}
	case "response.reasoning_summary_text.delta", "response.reasoning_text.delta":
		if isStringToken(e.delta) {
			dst = s.reasoningDelta(dst, e)
		}
	case "response.refusal.delta":
		if isStringToken(e.delta) {
			s.markText(e.itemID)
			dst = s.appendDelta(dst, `{"refusal":`, e.delta, `}`)
		}
	case "response.output_item.added":
		dst = s.itemAdded(dst, e)
	case "response.function_call_arguments.delta", "response.custom_tool_call_input.delta":
		if isStringToken(e.delta) && len(e.delta) > 2 {
			if c := s.findCall(e); c != nil && !c.skip {
				c.argsSent = true
				dst = s.appendArgs(dst, c.index, e.delta)
			}
		}
	case "response.function_call_arguments.done", "response.custom_tool_call_input.done":
		args := e.arguments
		if !isJSONString(args) {
			args = field(ev.Data, "input")
		}
		if c := s.findCall(e); c != nil && !c.skip && !c.argsSent && isJSONString(args) && len(args) > 2 {
			c.argsSent = true
			dst = s.appendArgs(dst, c.index, args)
		}
	case "response.output_item.done":
		if p, ok := imageCallPart(e.item); ok {
			return s.appendImageDelta(dst, p)
		}
		dst = s.itemDone(dst, e)
	case "response.created", "response.in_progress":
		if id := field(e.response, "id"); id != nil {
			s.res.ResponseID, _ = unquote(id)
		}
	case "response.completed", "response.incomplete":
		dst = s.complete(dst, e)
	case "response.failed", "error":
		dst = s.fail(dst, failureFromEvent(e))
	}
	return dst
}

// Finish appends the end of the stream when the upstream closed it without a
// terminal event: an error event, then [DONE].
func (s *ChatStream) Finish(dst []byte) []byte {
	if s.done {
		return dst
	}
	return s.fail(dst, errIncomplete())
}

// Fail ends the stream with err (for failures outside the upstream's events,
// such as a broken connection): an error event, then [DONE].
func (s *ChatStream) Fail(dst []byte, err *Error) []byte {
	if s.done {
		return dst
	}
	return s.fail(dst, err)
}

func (s *ChatStream) fail(dst []byte, err *Error) []byte {
	s.done = true
	err = s.opts.CallIDs.RestoreError(err)
	s.res.Err = err
	dst = append(dst, "data: "...)
	dst = append(dst, err.JSON()...)
	dst = append(dst, "\n\n"...)
	return append(dst, "data: [DONE]\n\n"...)
}

func (s *ChatStream) complete(dst []byte, e upstreamEvent) []byte {
	s.done = true
	s.res = completedResult(e, s.res)
	finish := s.res.FinishReason
	if len(s.calls) > 0 && finish == "stop" {
		finish = "tool_calls"
		if s.opts.LegacyFunctions {
			finish = "function_call"
		}
	}
	s.res.FinishReason = finish
	dst = s.ensureRole(dst)
	dst = append(dst, s.prefix...)
	dst = append(dst, `{},"finish_reason":"`...)
	dst = append(dst, finish...)
	dst = append(dst, `"}]`...)
	if s.opts.IncludeUsage {
		dst = append(dst, `,"usage":null}`+"\n\n"...)
		dst = append(dst, s.head...)
		dst = append(dst, `,"choices":[],"usage":`...)
		dst = appendChatUsage(dst, s.res.Usage)
		dst = append(dst, "}\n\n"...)
	} else {
		dst = append(dst, "}\n\n"...)
	}
	return append(dst, "data: [DONE]\n\n"...)
}

// incompleteFinish maps response.incomplete's reason to a finish reason.
func incompleteFinish(reason string) string {
	switch reason {
	case "content_filter":
		return "content_filter"
	default:
		return "length"
	}
}

func (s *ChatStream) ensureRole(dst []byte) []byte {
	if s.roleSent {
		return dst
	}
	s.roleSent = true
	dst = append(dst, s.prefix...)
	dst = append(dst, `{"role":"assistant","content":""}`...)
	return append(dst, s.suffix...)
}

// appendDelta appends one chunk whose delta is open + raw + close.
func (s *ChatStream) appendDelta(dst []byte, open string, raw []byte, close string) []byte {
	dst = s.ensureRole(dst)
	dst = append(dst, s.prefix...)
	dst = append(dst, open...)
	dst = append(dst, raw...)
	dst = append(dst, close...)
	return append(dst, s.suffix...)
}

func (s *ChatStream) appendArgs(dst []byte, index int, args []byte) []byte {
	dst = s.ensureRole(dst)
	dst = append(dst, s.prefix...)
	if s.opts.LegacyFunctions {
		dst = append(dst, `{"function_call":{"arguments":`...)
		dst = append(dst, args...)
		dst = append(dst, `}}`...)
		return append(dst, s.suffix...)
	}
	dst = append(dst, `{"tool_calls":[{"index":`...)
	dst = strconv.AppendInt(dst, int64(index), 10)
	dst = append(dst, `,"function":{"arguments":`...)
	dst = append(dst, args...)
	dst = append(dst, `}}]}`...)
	return append(dst, s.suffix...)
}

func (s *ChatStream) markText(itemID []byte) {
	if n := len(s.textItems); n > 0 && bytes.Equal(s.textItems[n-1], itemID) {
		return
	}
	for _, id := range s.textItems {
		if bytes.Equal(id, itemID) {
			return
		}
	}
	s.textItems = append(s.textItems, append([]byte(nil), itemID...))
}

func (s *ChatStream) textStreamed(itemID []byte) bool {
	for _, id := range s.textItems {
		if bytes.Equal(id, itemID) {
			return true
		}
	}
	return false
}

func (s *ChatStream) reasoningDelta(dst []byte, e upstreamEvent) []byte {
	r := &s.reasoning
	if r.sent && (!bytes.Equal(r.lastItem, e.itemID) || r.lastIndex != e.summaryIndex) {
		dst = s.appendDelta(dst, `{"reasoning_content":`, []byte(`"\n\n"`), `}`)
	}
	if !bytes.Equal(r.lastItem, e.itemID) {
		r.lastItem = append(r.lastItem[:0], e.itemID...)
		r.items = append(r.items, append([]byte(nil), e.itemID...))
	}
	r.lastIndex = e.summaryIndex
	r.sent = true
	return s.appendDelta(dst, `{"reasoning_content":`, e.delta, `}`)
}

func (s *ChatStream) reasoningStreamed(itemID []byte) bool {
	for _, id := range s.reasoning.items {
		if bytes.Equal(id, itemID) {
			return true
		}
	}
	return false
}

// findCall finds the call an argument event belongs to: by item id, then by
// output index, then the latest call.
func (s *ChatStream) findCall(e upstreamEvent) *chatToolCall {
	if len(e.itemID) > 0 {
		for i := range s.calls {
			if bytes.Equal(s.calls[i].itemID, e.itemID) {
				return &s.calls[i]
			}
		}
	}
	if e.hasOutputIdx {
		for i := range s.calls {
			if s.calls[i].outputIndex == e.outputIndex {
				return &s.calls[i]
			}
		}
	}
	if n := len(s.calls); n > 0 {
		return &s.calls[n-1]
	}
	return nil
}

func (s *ChatStream) itemAdded(dst []byte, e upstreamEvent) []byte {
	item, ok := parseItem(e.item)
	if !ok || !item.isToolCall() {
		return dst
	}
	c := s.newCall(item, e)
	if c.skip {
		return dst
	}
	dst = s.appendCallStart(dst, c.index, item)
	if args := item.callArguments(); len(args) > 2 {
		c.argsSent = true
		dst = s.appendArgs(dst, c.index, args)
	}
	return dst
}

func (s *ChatStream) newCall(item upstreamItem, e upstreamEvent) *chatToolCall {
	s.calls = append(s.calls, chatToolCall{
		itemID:      append([]byte(nil), item.id...),
		outputIndex: e.outputIndex,
		index:       len(s.calls),
		skip:        s.opts.LegacyFunctions && len(s.calls) > 0,
	})
	return &s.calls[len(s.calls)-1]
}

// appendCallStart emits the first chunk of a call: index, id, type and the
// client's original name, with empty arguments. A legacy answer has only
// name and arguments.
func (s *ChatStream) appendCallStart(dst []byte, index int, item upstreamItem) []byte {
	name, _ := unquote(item.name)
	name = s.opts.ToolNames.Restore(name)
	dst = s.ensureRole(dst)
	dst = append(dst, s.prefix...)
	if s.opts.LegacyFunctions {
		dst = append(dst, `{"function_call":{"name":`...)
		dst = appendQuoted(dst, name)
		dst = append(dst, `,"arguments":""}}`...)
		return append(dst, s.suffix...)
	}
	dst = append(dst, `{"tool_calls":[{"index":`...)
	dst = strconv.AppendInt(dst, int64(index), 10)
	dst = append(dst, `,"id":`...)
	switch {
	case !isJSONString(item.callID):
		dst = append(dst, `""`...)
	case len(s.opts.CallIDs) > 0:
		id, _ := unquote(item.callID)
		dst = appendQuoted(dst, s.opts.CallIDs.Restore(id))
	default:
		dst = append(dst, item.callID...)
	}
	dst = append(dst, `,"type":"function","function":{"name":`...)
	dst = appendQuoted(dst, name)
	dst = append(dst, `,"arguments":""}}]}`...)
	return append(dst, s.suffix...)
}

func (s *ChatStream) itemDone(dst []byte, e upstreamEvent) []byte {
	item, ok := parseItem(e.item)
	if !ok {
		return dst
	}
	switch {
	case item.isToolCall():
		var c *chatToolCall
		for i := range s.calls {
			if len(item.id) > 0 && bytes.Equal(s.calls[i].itemID, item.id) ||
				len(item.id) == 0 && s.calls[i].outputIndex == e.outputIndex {
				c = &s.calls[i]
				break
			}
		}
		if c == nil {
			// Seen only now: emit the whole call once.
			if c = s.newCall(item, e); !c.skip {
				dst = s.appendCallStart(dst, c.index, item)
			}
		}
		if args := item.callArguments(); !c.skip && !c.argsSent && len(args) > 2 {
			c.argsSent = true
			dst = s.appendArgs(dst, c.index, args)
		}
	case string(item.typ) == "message":
		if !s.textStreamed(item.id) {
			s.markText(item.id)
			forEachText(item.content, []string{"output_text"}, func(text []byte) {
				if len(text) > 2 {
					dst = s.appendDelta(dst, `{"content":`, text, `}`)
				}
			})
			forEachText(item.content, []string{"refusal"}, func(text []byte) {
				if len(text) > 2 {
					dst = s.appendDelta(dst, `{"refusal":`, text, `}`)
				}
			})
		}
	case string(item.typ) == "reasoning":
		if !s.reasoningStreamed(item.id) {
			s.reasoning.items = append(s.reasoning.items, append([]byte(nil), item.id...))
			forEachText(item.summary, []string{"summary_text"}, func(text []byte) {
				if len(text) <= 2 {
					return
				}
				if s.reasoning.sent {
					dst = s.appendDelta(dst, `{"reasoning_content":`, []byte(`"\n\n"`), `}`)
				}
				s.reasoning.sent = true
				dst = s.appendDelta(dst, `{"reasoning_content":`, text, `}`)
			})
		}
	}
	return dst
}

// isStringToken is the hot-path check that a raw value is a string; the
// scanner has already validated its contents.
func isStringToken(raw []byte) bool {
	return len(raw) >= 2 && raw[0] == '"'
}
