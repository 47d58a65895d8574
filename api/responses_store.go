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

// storeResponse stores the client's view of a completed response (resp,
// the Response object as AggregateResponses builds it) with the turn's
// input. It runs after the client got the end of the response (storeJob);
// a failure is logged, never the client's.
func (h *Handler) storeResponse(req *request, resp []byte) {
	t := req.turn
	var head struct {
		ID string `json:"id"`
	}
	// The collector wrote resp: its id is found without decoding the rest.
	if id, ok := translate.Unquote(translate.Field(resp, "id")); ok {
		head.ID = id
	} else if json.Unmarshal(resp, &head) != nil {
		return
	}
	if head.ID == "" {
		return
	}
	key, ids := head.ID, []string(nil)
	if t.store {
		ids = make([]string, 0, len(t.input)+4)
		for _, items := range [][]json.RawMessage{t.input, responseOutput(resp)} {
			for _, it := range items {
				if _, id := itemTypeID(it); id != "" {
					ids = append(ids, id)
				}
			}
		}
	} else {
		// A socket's store:false response: kept for that socket's next
		// turn only, its items not indexed for item_reference.
		key = req.chain.scopedKey(head.ID)
	}
	sr := vault.StoredResponse{ID: key, Input: t.input, Response: storedView(resp, t)}
	if !t.store {
		sr.TTL = h.cfg.SocketMaxAge // a socket's entry outlives no socket, even if its close is missed
	}
	err := h.store.Responses.PutResponse(req.user.ID, sr, ids)
	if req.chain != nil {
		kept := key
		if err != nil || t.store {
			kept = "" // stored for good, or not at all: looked up by its id
		}
		if stale := req.chain.advance(head.ID, kept); stale != "" {
			h.dropScoped(req.user.ID, stale)
		}
	}
	switch {
	case errors.Is(err, vault.ErrResponseTooLarge):
		h.log.Info("response not stored: over the size cap", zap.String("request_id", req.id), zap.String("user_id", req.user.ID), zap.Error(err))
	case err != nil:
		h.log.Warn("storing a response failed", zap.String("request_id", req.id), zap.String("user_id", req.user.ID), zap.Error(err))
	}
}

// storeJob is the store write of one response, registered as in flight
// (pendingStore) before the client sees the response end, so a lookup
// right after waits for it, and run once the answer is out.
type storeJob struct {
	h   *Handler
	req *request
	end func()
	// build makes the response object to store; nil: nothing to store.
	build func() []byte
}

// pendWrite registers req's store write as in flight.
func (h *Handler) pendWrite(req *request) *storeJob {
	return &storeJob{h: h, req: req, end: h.store.begin(req.user.ID)}
}

// run stores what build makes on a goroutine of its own, off the
// client's path. It does not depend on the request's context: a client
// that hung up after the response ended still has it stored. A nil job
// runs nothing.
func (j *storeJob) run() {
	if j == nil {
		return
	}
	go func() {
		defer j.end()
		if resp := j.build(); resp != nil {
			j.h.storeResponse(j.req, resp)
		}
	}()
}

// storedView is the response object as GET /v1/responses/{id} shows it:
// what the client got, with the store and chain OpenAI would report
// (the upstream ran with store:false and no previous_response_id).
func storedView(resp []byte, t *turn) json.RawMessage {
	prev := json.RawMessage("null")
	if t.previous != "" {
		prev, _ = json.Marshal(t.previous)
	}
	if len(bytes.TrimSpace(resp)) > 0 {
		// The same bytes as the decode and re-encode below, without
		// decoding the response (translate.WithMembers).
		if out, ok := translate.WithMembers(resp, []string{"store", "previous_response_id"}, []json.RawMessage{json.RawMessage("true"), prev}); ok {
			return out
		}
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(resp, &obj) != nil || obj == nil {
		return resp
	}
	obj["store"], obj["previous_response_id"] = json.RawMessage("true"), prev
	out, err := json.Marshal(obj)
	if err != nil {
		return resp
	}
	return out
}

// storing reports whether req's response is to be stored: for good, or
// for its socket's next turn (socket_chain.go).
func (h *Handler) storing(req *request) bool {
	return req.turn != nil && (req.turn.store || req.chain != nil) && h.cfg.Responses != nil
}

// storingAggregator wraps a non-streaming answer: a completed response
// is registered for storing (job), stored once its body is written.
func (h *Handler) storingAggregator(req *request, agg relay.Aggregator, job **storeJob) relay.Aggregator {
	return func(up io.Reader) ([]byte, translate.StreamResult) {
		body, res := agg(up)
		if res.Err == nil && res.Completed && body != nil {
			*job = h.pendWrite(req)
			(*job).build = func() []byte { return body }
		}
		return body, res
	}
}

// storingStream wraps a streamed answer: it collects the response's
// output items from the upstream's events as they pass (not the events),
// and at the terminal event registers the store write, before passing
// that event on; the relay runs it once the stream is over.
type storingStream struct {
	relay.Translator
	h   *Handler
	req *request
	rc  *translate.ResponseCollector
	job *storeJob
}

func (h *Handler) storingStream(req *request, tr relay.Translator) *storingStream {
	return &storingStream{Translator: tr, h: h, req: req, rc: translate.NewResponseCollector(req.mapped.ToolNames, req.mapped.CallIDs)}
}

// Translate collects ev, registering the write at the terminal event.
func (s *storingStream) Translate(dst []byte, ev translate.Event) []byte {
	if s.job == nil && !s.Translator.Done() && s.rc.Observe(ev) {
		s.job = s.h.pendWrite(s.req)
		rc := s.rc
		s.job.build = func() []byte {
			body, res := rc.Response()
			if res.Err != nil || !res.Completed {
				return nil
			}
			return body
		}
	}
	return s.Translator.Translate(dst, ev)
}

// errNoStore is the answer of the stored-response endpoints without a
// store.
func errNoStore(id string) *apierror.Error { return apierror.ResponseNotFound(id) }
