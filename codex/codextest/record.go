package codextest

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Request is one request the fake received.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	// Body is the request body after Content-Encoding decoding.
	Body []byte
	// JSON is Body decoded when it is a JSON object, else nil.
	JSON map[string]any
	// Form is Body decoded when it is form-encoded, else nil.
	Form url.Values
	// Scenario is the scenario served (Responses requests that passed
	// validation only).
	Scenario Scenario
	Time     time.Time
}

// newRequest captures r with an already-read body.
func newRequest(r *http.Request, body []byte) Request {
	rq := Request{
		Method: r.Method,
		Path:   r.URL.Path,
		Query:  r.URL.Query(),
		Header: r.Header.Clone(),
		Body:   body,
		Time:   time.Now(),
	}
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' {
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(t))
		d.UseNumber()
		if d.Decode(&m) == nil {
			rq.JSON = m
		}
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		rq.Form, _ = url.ParseQuery(string(body))
	}
	return rq
}

// recordRequest appends r to the log (unless disabled) and returns its index.
func (s *Server) recordRequest(r *http.Request, body []byte) int {
	return s.record(newRequest(r, body))
}

func (s *Server) record(rq Request) int {
	if s.opts.NoRecord {
		return -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, rq)
	return len(s.requests) - 1
}

// setScenario notes the served scenario on a logged request.
func (s *Server) setScenario(idx int, sc Scenario) {
	if idx < 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if idx < len(s.requests) {
		s.requests[idx].Scenario = sc
	}
}

// Requests returns a copy of every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Header = r.Header.Clone()
		r.Query = maps.Clone(r.Query)
		out[i] = r
	}
	return out
}

// RequestsTo returns the received requests whose path ends with suffix,
// e.g. "/responses" or "/oauth/token".
func (s *Server) RequestsTo(suffix string) []Request {
	var out []Request
	for _, r := range s.Requests() {
		if strings.HasSuffix(r.Path, suffix) {
			out = append(out, r)
		}
	}
	return out
}

// RefreshCount returns how many refresh_token grants were attempted.
func (s *Server) RefreshCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

// GenerationCount returns how many POST /responses requests reached the
// fake, whatever their fate (rejected, answered, hung, reset). It counts
// even with Options.NoRecord, so tests can assert that a generation was
// sent exactly once.
func (s *Server) GenerationCount() int { return int(s.generations.Load()) }

// ResetRequests clears the request log and counters.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
	s.refreshes = 0
	s.reuses = 0
	s.generations.Store(0)
}
