package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// checkKind says how a response body proves it ended properly.
type checkKind int

const (
	// checkResponses: an SSE stream of Responses events whose last event
	// is response.completed and which carries no error event.
	checkResponses checkKind = iota
	// checkChat: a chat.completion.chunk stream that ends with
	// "data: [DONE]" and carries no error event.
	checkChat
	// checkChatJSON: one chat.completion object with finish_reason stop.
	checkChatJSON
	// checkMessages: an Anthropic SSE stream whose last event is
	// message_stop and which carries no error event.
	checkMessages
	// checkSocket: WebSocket frames of Responses events, one JSON object
	// each, the last response.completed, none an error (socket.go).
	checkSocket
)

func (k checkKind) String() string {
	switch k {
	case checkResponses:
		return "responses SSE, ends with response.completed"
	case checkChat:
		return "chat SSE, ends with [DONE]"
	case checkMessages:
		return "Anthropic SSE, ends with message_stop"
	case checkSocket:
		return "WebSocket frames, end with response.completed"
	default:
		return "chat.completion JSON, finish_reason stop"
	}
}

// prefixLen is how much of each event the checker keeps: enough to see
// the event's name or the start of its data.
const prefixLen = 64

// maxJSONBody bounds what the checker keeps of a non-stream answer.
const maxJSONBody = 4 << 20

// bodyCheck follows a response body as it is read, without keeping it: it
// counts bytes and events, and remembers the start of the last event so
// the end of the stream can be checked. Chunk boundaries may fall
// anywhere, including between the two newlines that end an event.
type bodyCheck struct {
	kind     checkKind
	minDelta int // events the stream must at least carry

	bytes  int64
	events int
	cur    []byte // first prefixLen bytes of the event being read
	last   []byte // the same for the last complete event
	nl     bool   // the previous chunk ended in '\n'
	errEv  []byte // prefix of the first error event, if any
	json   []byte // whole body, checkChatJSON only
	tooBig bool
}

func newBodyCheck(kind checkKind, minDelta int) *bodyCheck {
	return &bodyCheck{kind: kind, minDelta: minDelta, cur: make([]byte, 0, prefixLen), last: make([]byte, 0, prefixLen)}
}

// reset prepares the checker for another body, keeping its buffers.
func (c *bodyCheck) reset() {
	c.bytes, c.events, c.nl, c.tooBig = 0, 0, false, false
	c.cur, c.last, c.errEv, c.json = c.cur[:0], c.last[:0], nil, c.json[:0]
}

// Write feeds the next chunk of the body; it never fails.
func (c *bodyCheck) Write(p []byte) (int, error) {
	n := len(p)
	c.bytes += int64(n)
	if c.kind == checkChatJSON {
		if len(c.json)+n > maxJSONBody {
			c.tooBig = true
		} else {
			c.json = append(c.json, p...)
		}
		return n, nil
	}
	for len(p) > 0 {
		if p[0] == '\n' && (c.nl || len(c.cur) == 0) {
			// A blank line: it ends the event being read, if any (the
			// "\n\n" may be split across chunks).
			c.endEvent()
			p = p[1:]
			c.nl = false
			continue
		}
		c.nl = false
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.keep(p)
			return n, nil
		}
		c.keep(p[:i+1])
		switch {
		case i+1 == len(p):
			c.nl = true
			return n, nil
		case p[i+1] == '\n':
			c.endEvent()
			p = p[i+2:]
		default:
			p = p[i+1:]
		}
	}
	return n, nil
}

func (c *bodyCheck) keep(b []byte) {
	if room := prefixLen - len(c.cur); room > 0 {
		c.cur = append(c.cur, b[:min(room, len(b))]...)
	}
}

func (c *bodyCheck) endEvent() {
	cur := c.cur
	c.cur = c.cur[:0]
	if len(cur) == 0 || cur[0] == ':' || cur[0] == '\n' { // blank or a comment (keepalive)
		return
	}
	c.events++
	if c.errEv == nil && isErrorEvent(cur) {
		c.errEv = append([]byte(nil), cur...)
	}
	c.last = append(c.last[:0], cur...)
}

func isErrorEvent(prefix []byte) bool {
	return bytes.HasPrefix(prefix, []byte("event: error")) ||
		bytes.HasPrefix(prefix, []byte("event: response.failed")) ||
		bytes.HasPrefix(prefix, []byte(`data: {"error"`)) ||
		bytes.HasPrefix(prefix, []byte(`data: {"type":"error"`)) ||
		bytes.HasPrefix(prefix, []byte(`data: {"type":"response.failed"`))
}

// verdict says whether the body ended properly.
func (c *bodyCheck) verdict() error {
	if c.kind == checkChatJSON {
		return c.jsonVerdict()
	}
	if len(c.cur) > 0 {
		return fmt.Errorf("stream cut inside an event after %d bytes: %q", c.bytes, c.cur)
	}
	if c.errEv != nil {
		return fmt.Errorf("error event in the stream: %q", c.errEv)
	}
	switch c.kind {
	case checkResponses:
		if !bytes.HasPrefix(c.last, []byte("event: response.completed\n")) &&
			!bytes.HasPrefix(c.last, []byte(`data: {"type":"response.completed"`)) {
			return fmt.Errorf("stream did not end with response.completed (last event %q, %d events)", c.last, c.events)
		}
	case checkChat:
		if string(c.last) != "data: [DONE]\n" {
			return fmt.Errorf("stream did not end with [DONE] (last event %q, %d events)", c.last, c.events)
		}
	case checkMessages:
		if !bytes.HasPrefix(c.last, []byte("event: message_stop\n")) {
			return fmt.Errorf("stream did not end with message_stop (last event %q, %d events)", c.last, c.events)
		}
	}
	if c.events < c.minDelta {
		return fmt.Errorf("only %d events, want at least %d", c.events, c.minDelta)
	}
	return nil
}

func (c *bodyCheck) jsonVerdict() error {
	if c.tooBig {
		return errors.New("chat.completion larger than 4 MiB")
	}
	var cc struct {
		Object  string `json:"object"`
		Choices []struct {
			FinishReason string `json:"finish_reason"`
			Message      struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(c.json, &cc); err != nil {
		return fmt.Errorf("not a JSON chat.completion: %w", err)
	}
	switch {
	case cc.Object != "chat.completion" || len(cc.Choices) != 1:
		return fmt.Errorf("not a chat.completion with one choice: object %q, %d choices", cc.Object, len(cc.Choices))
	case cc.Choices[0].FinishReason != "stop":
		return fmt.Errorf("finish_reason %q, want stop", cc.Choices[0].FinishReason)
	case len(cc.Choices[0].Message.Content) < c.minDelta:
		return fmt.Errorf("content of %d bytes, want at least %d", len(cc.Choices[0].Message.Content), c.minDelta)
	}
	return nil
}
