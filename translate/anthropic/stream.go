package anthropic

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/usemysub/caddy-codex-proxy/translate"
)

// StreamOptions describes the Message a stream is translated into.
type StreamOptions struct {
	// ID is the message id; a random "msg_" id when empty.
	ID string
	// Request is what the client asked for (model, limits, thinking).
	Request Request
	// ToolNames and CallIDs restore what the request mapping shortened.
	ToolNames translate.ToolNames
	CallIDs   translate.CallIDs
}

// OptionsFor builds the stream options of a mapped request.
func OptionsFor(m *translate.Mapped) StreamOptions {
	o := StreamOptions{ToolNames: m.ToolNames, CallIDs: m.CallIDs}
	if r, ok := m.Dialect.(*Request); ok && r != nil {
		o.Request = *r
	} else {
		o.Request.Model = m.ClientModel
	}
	return o
}

// Block kinds.
const (
	kindText     = "text"
	kindThinking = "thinking"
	kindToolUse  = "tool_use"
)

// Stream translates Codex Responses events into Messages stream events;
// it implements relay.Translator. With collect set (Aggregate) it builds
// the content blocks of one Message instead. Not safe for concurrent use.
type Stream struct {
	opts    StreamOptions
	started bool
	done    bool
	res     translate.StreamResult

	index   int    // the next content block's index
	open    string // the open block's kind, "" when none
	openFor []byte // the upstream item id the open block belongs to
	argSent bool   // the open tool_use block got argument deltas

	textItem []byte // the last message item text came for
	toolUsed bool
	refused  bool
	pinged   bool // a ping was sent for the current hidden reasoning

	// pending is text held back while it may be the start of a stop
	// sequence; maxStop is the longest sequence's length.
	pending string
	maxStop int
	// outBytes estimates the output for max_tokens.
	outBytes int64

	stopReason   string
	stopSequence string

	collect bool
	blocks  []collected
}

type collected struct {
	kind      string
	text      strings.Builder
	signature string
	id, name  string
}

// NewStream returns a translator for one response.
func NewStream(opts StreamOptions) *Stream {
	if opts.ID == "" {
		opts.ID = NewMessageID()
	}
	s := &Stream{opts: opts}
	for _, seq := range opts.Request.StopSequences {
		s.maxStop = max(s.maxStop, len(seq))
	}
	return s
}

// NewMessageID returns a random "msg_" id.
func NewMessageID() string { return "msg_" + rand.Text() }

// Started reports whether any event was produced yet.
func (s *Stream) Started() bool { return s.started }

// Done reports whether message_stop (or an error event) was produced.
func (s *Stream) Done() bool { return s.done }

// Result is what the stream amounted to so far.
func (s *Stream) Result() translate.StreamResult { return s.res }

// Translate appends the events for one upstream event.
func (s *Stream) Translate(dst []byte, ev translate.Event) []byte {
	if s.done {
		return dst
	}
	e, ok := translate.ViewEvent(ev)
	if !ok {
		return dst
	}
	switch string(e.Type()) {
	case "response.output_text.delta", "response.refusal.delta":
		if string(e.Type()) == "response.refusal.delta" {
			s.refused = true
		}
		if translate.IsStringToken(e.Delta()) {
			dst = s.text(dst, e.ItemID(), e.Delta())
		}
	case "response.reasoning_summary_text.delta", "response.reasoning_text.delta":
		if !translate.IsStringToken(e.Delta()) {
			break
		}
		if !s.opts.Request.Thinking {
			dst = s.ping(dst)
			break
		}
		if s.open != kindThinking || string(s.openFor) != string(e.ItemID()) {
			dst = s.startBlock(dst, kindThinking, e.ItemID(), "", "")
		}
		dst = s.delta(dst, "thinking_delta", "thinking", e.Delta())
	case "response.reasoning_summary_part.added":
		if s.opts.Request.Thinking && s.open == kindThinking && string(s.openFor) == string(e.ItemID()) {
			if idx := e.SummaryIndex(); idx > 0 {
				dst = s.delta(dst, "thinking_delta", "thinking", []byte(`"\n\n"`))
			}
		}
	case "response.output_item.added":
		dst = s.itemAdded(dst, e.Item())
	case "response.function_call_arguments.delta", "response.custom_tool_call_input.delta":
		if s.open == kindToolUse && translate.IsStringToken(e.Delta()) && len(e.Delta()) > 2 {
			s.argSent = true
			dst = s.delta(dst, "input_json_delta", "partial_json", e.Delta())
		}
	case "response.output_item.done":
		dst = s.itemDone(dst, e.Item())
	case "response.created", "response.in_progress":
		if id, ok := translate.Unquote(translate.Field(e.Response(), "id")); ok {
			s.res.ResponseID = id
		}
	case "response.completed", "response.incomplete":
		dst = s.complete(dst, e)
	case "response.failed", "error":
		dst = s.Fail(dst, e.Failure())
	}
	if s.overLimit() && !s.done {
		dst = s.finish(dst, "max_tokens", "")
	}
	return dst
}

// Finish ends a stream the upstream closed without its terminal event.
func (s *Stream) Finish(dst []byte) []byte {
	if s.done {
		return dst
	}
	return s.Fail(dst, translate.ErrIncomplete())
}

// Fail ends the stream with an error event.
func (s *Stream) Fail(dst []byte, err *translate.Error) []byte {
	if s.done {
		return dst
	}
	s.done = true
	s.res.Err = s.opts.CallIDs.RestoreError(err)
	if !s.started || s.collect {
		return dst // the relay answers it with its real status
	}
	return appendEvent(dst, "error", ErrorBody(s.res.Err))
}

// ensureStarted writes message_start once.
func (s *Stream) ensureStarted(dst []byte) []byte {
	if s.started {
		return dst
	}
	s.started = true
	if s.collect {
		return dst
	}
	b := []byte(`{"type":"message_start","message":{"id":`)
	b = translate.AppendJSONString(b, s.opts.ID)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = translate.AppendJSONString(b, s.opts.Request.Model)
	b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}`...)
	return appendEvent(dst, "message_start", b)
}

// ping tells the client the model is still thinking (once per hidden
// reasoning item).
func (s *Stream) ping(dst []byte) []byte {
	if s.pinged || s.collect {
		return dst
	}
	s.pinged = true
	dst = s.ensureStarted(dst)
	return appendEvent(dst, "ping", []byte(`{"type":"ping"}`))
}

func (s *Stream) itemAdded(dst []byte, raw []byte) []byte {
	it, ok := translate.ViewItem(raw)
	if !ok {
		return dst
	}
	switch string(it.Type) {
	case "reasoning":
		s.pinged = false
		if !s.opts.Request.Thinking {
			dst = s.ping(dst)
		}
	case "function_call", "custom_tool_call":
		callID, _ := translate.Unquote(it.CallID)
		name, _ := translate.Unquote(it.Name)
		s.toolUsed = true
		dst = s.startBlock(dst, kindToolUse, it.ID, s.opts.CallIDs.Restore(callID), s.opts.ToolNames.Restore(name))
	}
	return dst
}

func (s *Stream) itemDone(dst []byte, raw []byte) []byte {
	it, ok := translate.ViewItem(raw)
	if !ok {
		return dst
	}
	switch string(it.Type) {
	case "reasoning":
		if !s.opts.Request.Thinking {
			return dst
		}
		enc, _ := translate.Unquote(it.EncryptedContent)
		if enc == "" {
			if s.open == kindThinking {
				dst = s.stopBlock(dst)
			}
			return dst
		}
		if s.open != kindThinking || string(s.openFor) != string(it.ID) {
			dst = s.startBlock(dst, kindThinking, it.ID, "", "")
		}
		sig := translate.AppendJSONString(nil, SignaturePrefix+enc)
		dst = s.delta(dst, "signature_delta", "signature", sig)
		dst = s.stopBlock(dst)
	case "message":
		if string(s.textItem) != string(it.ID) {
			// The text came whole in the done item, without deltas.
			translate.ForEachText(it.Content, []string{"output_text"}, func(text []byte) {
				if !s.done {
					dst = s.text(dst, it.ID, text)
				}
			})
		}
		if s.open == kindText {
			dst = s.flushPending(dst)
			if !s.done {
				dst = s.stopBlock(dst)
			}
		}
	case "function_call", "custom_tool_call":
		if s.open != kindToolUse || string(s.openFor) != string(it.ID) {
			// The call came whole in the done item.
			dst = s.itemAdded(dst, raw)
		}
		if s.open == kindToolUse {
			if !s.argSent && len(it.Arguments) > 2 {
				dst = s.delta(dst, "input_json_delta", "partial_json", it.Arguments)
			}
			dst = s.stopBlock(dst)
		}
	}
	return dst
}

// text handles one text delta (raw JSON string), holding back what may
// start a stop sequence.
func (s *Stream) text(dst []byte, itemID, raw []byte) []byte {
	if string(s.textItem) != string(itemID) {
		s.textItem = append(s.textItem[:0], itemID...)
	}
	if s.open != kindText {
		dst = s.startBlock(dst, kindText, itemID, "", "")
	}
	if s.maxStop == 0 {
		return s.delta(dst, "text_delta", "text", raw)
	}
	t, ok := translate.Unquote(raw)
	if !ok {
		return dst
	}
	all := s.pending + t
	for _, seq := range s.opts.Request.StopSequences {
		if i := strings.Index(all, seq); i >= 0 {
			if i > 0 {
				dst = s.delta(dst, "text_delta", "text", translate.AppendJSONString(nil, all[:i]))
			}
			s.pending = ""
			return s.finish(dst, "stop_sequence", seq)
		}
	}
	cut := max(len(all)-(s.maxStop-1), 0)
	for cut > 0 && cut < len(all) && !utf8.RuneStart(all[cut]) {
		cut--
	}
	s.pending = all[cut:]
	if cut > 0 {
		dst = s.delta(dst, "text_delta", "text", translate.AppendJSONString(nil, all[:cut]))
	}
	return dst
}

// flushPending sends the held-back text once no stop sequence can start.
func (s *Stream) flushPending(dst []byte) []byte {
	if s.pending == "" || s.open != kindText {
		return dst
	}
	p := s.pending
	s.pending = ""
	return s.delta(dst, "text_delta", "text", translate.AppendJSONString(nil, p))
}

func (s *Stream) startBlock(dst []byte, kind string, itemID []byte, id, name string) []byte {
	if s.open != "" {
		dst = s.flushPending(dst)
		dst = s.stopBlock(dst)
	}
	dst = s.ensureStarted(dst)
	s.open, s.openFor, s.argSent = kind, append(s.openFor[:0], itemID...), false
	if s.collect {
		s.blocks = append(s.blocks, collected{kind: kind, id: id, name: name})
		return dst
	}
	b := []byte(`{"type":"content_block_start","index":`)
	b = strconv.AppendInt(b, int64(s.index), 10)
	switch kind {
	case kindText:
		b = append(b, `,"content_block":{"type":"text","text":""}}`...)
	case kindThinking:
		b = append(b, `,"content_block":{"type":"thinking","thinking":"","signature":""}}`...)
	case kindToolUse:
		b = append(b, `,"content_block":{"type":"tool_use","id":`...)
		b = translate.AppendJSONString(b, id)
		b = append(b, `,"name":`...)
		b = translate.AppendJSONString(b, name)
		b = append(b, `,"input":{}}}`...)
	}
	return appendEvent(dst, "content_block_start", b)
}

// delta appends one content_block_delta; raw is a JSON string.
func (s *Stream) delta(dst []byte, typ, key string, raw []byte) []byte {
	if typ != "signature_delta" {
		s.outBytes += int64(len(raw) - 2)
	}
	if s.collect {
		b := &s.blocks[len(s.blocks)-1]
		v, _ := translate.Unquote(raw)
		if typ == "signature_delta" {
			b.signature = v
		} else {
			b.text.WriteString(v)
		}
		return dst
	}
	dst = append(dst, "event: content_block_delta\ndata: "...)
	dst = append(dst, `{"type":"content_block_delta","index":`...)
	dst = strconv.AppendInt(dst, int64(s.index), 10)
	dst = append(dst, `,"delta":{"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","`...)
	dst = append(dst, key...)
	dst = append(dst, `":`...)
	dst = append(dst, raw...)
	return append(dst, "}}\n\n"...)
}

func (s *Stream) stopBlock(dst []byte) []byte {
	if s.open == "" {
		return dst
	}
	s.open = ""
	i := s.index
	s.index++
	if s.collect {
		return dst
	}
	b := []byte(`{"type":"content_block_stop","index":`)
	b = strconv.AppendInt(b, int64(i), 10)
	return appendEvent(dst, "content_block_stop", append(b, '}'))
}

// overLimit reports output past the client's max_tokens.
func (s *Stream) overLimit() bool {
	m := s.opts.Request.MaxTokens
	return m > 0 && translate.EstimateTokens(s.outBytes) >= m
}

func (s *Stream) complete(dst []byte, e translate.EventView) []byte {
	s.res.Completed = true
	s.res.Usage, _ = e.ResponseUsage()
	if id, ok := translate.Unquote(translate.Field(e.Response(), "id")); ok {
		s.res.ResponseID = id
	}
	reason := "end_turn"
	switch {
	case string(e.Type()) == "response.incomplete":
		r, _ := translate.Unquote(translate.Field(translate.Field(e.Response(), "incomplete_details"), "reason"))
		reason = "max_tokens"
		if r == "content_filter" {
			reason = "refusal"
		}
	case s.refused:
		reason = "refusal"
	case s.toolUsed:
		reason = "tool_use"
	}
	return s.finish(dst, reason, "")
}

// finish closes the open block and ends the message with reason.
func (s *Stream) finish(dst []byte, reason, seq string) []byte {
	if reason != "stop_sequence" {
		dst = s.flushPending(dst)
	}
	dst = s.stopBlock(dst)
	dst = s.ensureStarted(dst)
	s.done = true
	s.stopReason, s.stopSequence = reason, seq
	s.res.FinishReason = reason
	if !s.res.Completed {
		// Stopped by the proxy: the upstream's usage will not come.
		s.res.Completed = true
	}
	if s.collect {
		return dst
	}
	b := []byte(`{"type":"message_delta","delta":{"stop_reason":`)
	b = translate.AppendJSONString(b, reason)
	b = append(b, `,"stop_sequence":`...)
	if seq == "" {
		b = append(b, "null"...)
	} else {
		b = translate.AppendJSONString(b, seq)
	}
	b = append(b, `},"usage":`...)
	b = s.appendUsage(b)
	dst = appendEvent(dst, "message_delta", append(b, '}'))
	return appendEvent(dst, "message_stop", []byte(`{"type":"message_stop"}`))
}

// appendUsage writes usage in Anthropic's terms: input_tokens exclude the
// cached prefix, which is cache_read_input_tokens. Without the upstream's
// usage (the proxy stopped the answer) the output is estimated.
func (s *Stream) appendUsage(b []byte) []byte {
	u := s.res.Usage
	out := u.OutputTokens
	if out == 0 {
		out = translate.EstimateTokens(s.outBytes)
	}
	b = append(b, `{"input_tokens":`...)
	b = strconv.AppendInt(b, max(u.InputTokens-u.CachedTokens, 0), 10)
	b = append(b, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":`...)
	b = strconv.AppendInt(b, u.CachedTokens, 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, out, 10)
	return append(b, '}')
}

// appendEvent appends one named SSE event.
func appendEvent(dst []byte, name string, data []byte) []byte {
	dst = append(dst, "event: "...)
	dst = append(dst, name...)
	dst = append(dst, "\ndata: "...)
	dst = append(dst, data...)
	return append(dst, "\n\n"...)
}

// Aggregate reads a whole upstream stream into one Message object.
func Aggregate(up io.Reader, opts StreamOptions) ([]byte, translate.StreamResult) {
	s := NewStream(opts)
	s.collect = true
	rd := translate.NewReader(up)
	for !s.done {
		ev, err := rd.Next()
		if err != nil {
			if err == io.EOF {
				s.Finish(nil)
			} else {
				s.Fail(nil, &translate.Error{Status: 502, Type: "server_error", Code: "upstream_stream_error",
					Message: "the upstream connection failed mid-response; retry the request"})
			}
			break
		}
		s.Translate(nil, ev)
	}
	s.res.OutputBytes = rd.DeltaBytes()
	if s.res.Err != nil {
		return nil, s.res
	}
	return s.message(), s.res
}

// message renders the collected Message.
func (s *Stream) message() []byte {
	b := []byte(`{"id":`)
	b = translate.AppendJSONString(b, s.opts.ID)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = translate.AppendJSONString(b, s.opts.Request.Model)
	b = append(b, `,"content":[`...)
	for i := range s.blocks {
		c := &s.blocks[i]
		if i > 0 {
			b = append(b, ',')
		}
		switch c.kind {
		case kindText:
			b = append(b, `{"type":"text","text":`...)
			b = translate.AppendJSONString(b, c.text.String())
		case kindThinking:
			b = append(b, `{"type":"thinking","thinking":`...)
			b = translate.AppendJSONString(b, c.text.String())
			b = append(b, `,"signature":`...)
			b = translate.AppendJSONString(b, c.signature)
		case kindToolUse:
			b = append(b, `{"type":"tool_use","id":`...)
			b = translate.AppendJSONString(b, c.id)
			b = append(b, `,"name":`...)
			b = translate.AppendJSONString(b, c.name)
			b = append(b, `,"input":`...)
			args := strings.TrimSpace(c.text.String())
			if args == "" || !json.Valid([]byte(args)) || args[0] != '{' {
				args = "{}"
			}
			b = append(b, args...)
		}
		b = append(b, '}')
	}
	b = append(b, `],"stop_reason":`...)
	b = translate.AppendJSONString(b, s.stopReason)
	b = append(b, `,"stop_sequence":`...)
	if s.stopSequence == "" {
		b = append(b, "null"...)
	} else {
		b = translate.AppendJSONString(b, s.stopSequence)
	}
	b = append(b, `,"usage":`...)
	b = s.appendUsage(b)
	return append(b, '}')
}
