package translate

import (
	"bytes"
)

// ResponsesStream passes Codex Responses events through to a /v1/responses
// client unchanged while noting how the response ended, so the request log
// gets usage and a stream cut short still ends with an error event the
// client can see.
type ResponsesStream struct {
	// ToolNames restores tool names the request mapping shortened.
	ToolNames ToolNames
	// CallIDs restores tool-call ids the request mapping shortened.
	CallIDs CallIDs
	// DropRateLimits leaves out the upstream's codex.rate_limits events
	// (the account's usage windows), for an operator who keeps them from
	// key holders. False (the default): they are relayed as sent.
	DropRateLimits bool

	done    bool
	started bool
	res     StreamResult
}

// Translate appends ev to dst in SSE framing and records terminal events.
//
// Only the events the proxy needs a value from are parsed: response.created
// and response.in_progress (the response id), the terminal events (usage,
// status, the error) and error events. Every other event is copied through
// as the upstream framed it (ev.Raw), as reverse_proxy would: its JSON is
// not checked, because the upstream is the Codex backend and a malformed
// event from it reaches the client exactly as sent. Events are rewritten
// only when tool names or call ids were shortened for this request.
func (s *ResponsesStream) Translate(dst []byte, ev Event) []byte {
	if s.done {
		return dst
	}
	if s.DropRateLimits && string(ev.Name) == "codex.rate_limits" {
		return dst
	}
	if len(ev.Name) > 0 && !needsParse(ev.Name) && len(s.ToolNames) == 0 && len(s.CallIDs) == 0 {
		// Bookkeeping events alone do not commit the response: a failure
		// before any output can still get a real status.
		if !s.started && string(ev.Name) != "codex.rate_limits" && string(ev.Name) != "keepalive" {
			s.started = true
		}
		if len(ev.Raw) > 0 {
			return append(dst, ev.Raw...)
		}
		return AppendEvent(dst, ev.Name, ev.Data)
	}
	e, ok := parseEvent(ev)
	if !ok {
		return dst
	}
	switch string(e.typ) {
	case "response.created", "response.in_progress":
		if id, ok := unquote(field(e.response, "id")); ok {
			s.res.ResponseID = id
		}
	case "response.completed", "response.incomplete":
		s.done = true
		s.res = completedResult(e, s.res)
	case "response.failed", "error":
		s.done = true
		s.res.Err = s.CallIDs.RestoreError(failureFromEvent(e))
	case "codex.rate_limits":
		if s.DropRateLimits {
			return dst
		}
	default:
		if !s.started && string(e.typ) != "keepalive" {
			s.started = true
		}
	}
	name := ev.Name
	if len(name) == 0 {
		name = e.typ
	}
	return AppendEvent(dst, name, s.CallIDs.restoreIn(s.ToolNames.restoreIn(ev.Data)))
}

// needsParse reports the event names whose data the proxy reads.
func needsParse(name []byte) bool {
	switch string(name) {
	case "error", "response.failed", "response.created", "response.completed",
		"response.incomplete", "response.in_progress":
		return true
	}
	return false
}

// Started reports whether output events (beyond response.created and
// response.in_progress) were passed on.
func (s *ResponsesStream) Started() bool { return s.started }

// Done reports whether a terminal event was seen.
func (s *ResponsesStream) Done() bool { return s.done }

// Result returns what the stream amounted to so far.
func (s *ResponsesStream) Result() StreamResult { return s.res }

// Finish appends an error event when the upstream closed the stream without
// a terminal event.
func (s *ResponsesStream) Finish(dst []byte) []byte {
	if s.done {
		return dst
	}
	return s.Fail(dst, errIncomplete())
}

// Fail ends the stream with an error event carrying err.
func (s *ResponsesStream) Fail(dst []byte, err *Error) []byte {
	if s.done {
		return dst
	}
	s.done = true
	s.res.Err = err
	data := []byte(`{"type":"error","code":`)
	data = appendQuoted(data, err.Code)
	data = append(data, `,"message":`...)
	data = appendQuoted(data, err.Message)
	data = append(data, `,"param":null}`...)
	return AppendEvent(dst, []byte("error"), data)
}

// restoreIn rewrites shortened tool names inside raw event data back to the
// client's names. Shortened names end in a hash, so a plain replacement of
// the quoted name cannot hit anything else; nothing is copied when no name
// was shortened.
func (t ToolNames) restoreIn(data []byte) []byte {
	if len(t) == 0 {
		return data
	}
	for short, orig := range t {
		quoted := appendQuoted(nil, short)
		if bytes.Contains(data, quoted) {
			data = bytes.ReplaceAll(data, quoted, appendQuoted(nil, orig))
		}
	}
	return data
}
