package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/relay"
	"github.com/usemysub/caddy-codex-proxy/translate"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// maxCapture bounds the upstream events kept to rebuild a streamed
// response for the store; a longer stream is not stored (the vault's
// per-response cap would refuse it anyway).
const maxCapture = 16 << 20

// storeResponse stores the client's view of a completed response (resp,
// the Response object as AggregateResponses builds it) with the turn's
// input. It runs before the client gets the end of the response, so a
// next turn naming it finds it; a failure is logged, never the client's.
func (h *Handler) storeResponse(req *request, resp []byte) {
	t := req.turn
	var head struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if json.Unmarshal(resp, &head) != nil || head.ID == "" {
		return
	}
	ids := make([]string, 0, len(t.input)+4)
	for _, items := range [][]json.RawMessage{t.input, responseOutput(resp)} {
		for _, it := range items {
			if _, id := itemTypeID(it); id != "" {
				ids = append(ids, id)
			}
		}
	}
	err := h.cfg.Responses.PutResponse(req.user.ID, vault.StoredResponse{ID: head.ID, Input: t.input, Response: storedView(resp, t)}, ids)
	switch {
	case errors.Is(err, vault.ErrResponseTooLarge):
		h.log.Info("response not stored: over the size cap", zap.String("request_id", req.id), zap.String("user_id", req.user.ID), zap.Error(err))
	case err != nil:
		h.log.Warn("storing a response failed", zap.String("request_id", req.id), zap.String("user_id", req.user.ID), zap.Error(err))
	}
}

// storedView is the response object as GET /v1/responses/{id} shows it:
// what the client got, with the store and chain OpenAI would report
// (the upstream ran with store:false and no previous_response_id).
func storedView(resp []byte, t *turn) json.RawMessage {
	var obj map[string]json.RawMessage
	if json.Unmarshal(resp, &obj) != nil || obj == nil {
		return resp
	}
	obj["store"] = json.RawMessage("true")
	if t.previous != "" {
		obj["previous_response_id"], _ = json.Marshal(t.previous)
	} else {
		obj["previous_response_id"] = json.RawMessage("null")
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return resp
	}
	return out
}

// storing reports whether req's response is to be stored.
func (h *Handler) storing(req *request) bool {
	return req.turn != nil && req.turn.store && h.cfg.Responses != nil
}

// storingAggregator wraps a non-streaming answer: the response is stored
// before its body is written.
func (h *Handler) storingAggregator(req *request, agg relay.Aggregator) relay.Aggregator {
	return func(up io.Reader) ([]byte, translate.StreamResult) {
		body, res := agg(up)
		if res.Err == nil && res.Completed && body != nil {
			h.storeResponse(req, body)
		}
		return body, res
	}
}

// storingStream wraps a streamed answer: it keeps the upstream's events
// and, at the terminal event, rebuilds the response from them and stores
// it before passing that event on.
type storingStream struct {
	relay.Translator
	h      *Handler
	req    *request
	events []byte
	over   bool
}

// Translate keeps ev, then stores the response before its terminal event.
func (s *storingStream) Translate(dst []byte, ev translate.Event) []byte {
	if !s.over && !s.Translator.Done() {
		if len(ev.Raw) > 0 {
			s.events = append(s.events, ev.Raw...)
		} else {
			s.events = translate.AppendEvent(s.events, ev.Name, ev.Data)
		}
		if len(s.events) > maxCapture {
			s.over, s.events = true, nil
		}
		if !s.over && terminal(ev) {
			m := s.req.mapped
			body, res := translate.AggregateResponses(bytes.NewReader(s.events), m.ToolNames, m.CallIDs)
			s.events = nil
			if res.Err == nil && res.Completed {
				s.h.storeResponse(s.req, body)
			}
		}
	}
	return s.Translator.Translate(dst, ev)
}

// terminal reports a response.completed or response.incomplete event.
func terminal(ev translate.Event) bool {
	name := ev.Name
	if len(name) == 0 {
		var f struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(ev.Data, &f)
		name = []byte(f.Type)
	}
	return string(name) == "response.completed" || string(name) == "response.incomplete"
}

// errNoStore is the answer of the stored-response endpoints without a
// store.
func errNoStore(id string) *apierror.Error { return apierror.ResponseNotFound(id) }
