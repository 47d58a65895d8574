package api

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/translate"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Stored responses on /v1/responses (docs/translation.md#stored-responses).
// The backend requires store:false and knows no previous_response_id or
// item_reference, so the proxy keeps each response of a user (Responses,
// the vault) and rebuilds the whole input before the body is translated:
// the previous response's input and output items, then the turn's own,
// with each item_reference replaced by the item it names. The rebuilt
// input is what the translator pairs (every function_call with its
// output) and strips of ids, as for any replayed history.

// turn is what a /v1/responses request resolved to, for storing its
// response once it completes.
type turn struct {
	// store is the client's store (default true).
	store bool
	// previous is the previous_response_id it continued, if any.
	previous string
	// input is the whole input as sent upstream, each item with an id.
	input []json.RawMessage
}

// resolveTurnBody rebuilds body's input from the user's stored responses.
// It returns the body to translate (body itself when nothing was resolved,
// split anew when the input was rebuilt) and the turn to store; a nil turn
// means there is nothing to store (no store configured, or a body the
// translator will refuse anyway). The body is split once
// (translate.Body), and the translator reads that split too.
func (h *Handler) resolveTurnBody(body *translate.Body, req *request) (*translate.Body, *turn, *apierror.Error) {
	if h.cfg.Responses == nil || !body.OK() {
		return body, nil, nil // stateless, or the translator says what is wrong with it
	}
	t := &turn{store: !isFalse(body.Member("store"))}
	if r := body.Member("previous_response_id"); !isNull(r) {
		if t.previous, _ = jsonString(r); t.previous == "" {
			return nil, nil, apierror.InvalidValue("previous_response_id", "'previous_response_id' must be a response id (resp_…)")
		}
	}
	items, ok := inputItems(body.Member("input"))
	switch {
	case ok:
	case t.previous != "" && isNull(body.Member("input")): // a compaction of the chain alone needs no input
	case t.previous != "":
		return nil, nil, apierror.InvalidValue("input", "'input' must be a string or a non-empty list of item objects")
	default:
		return body, nil, nil // the translator says what is wrong with it
	}
	var prior []json.RawMessage
	if t.previous != "" {
		key := t.previous
		switch {
		case isScoped(key):
			return nil, nil, apierror.PreviousResponseNotFound(t.previous)
		case req.chain != nil:
			// The socket's last response may be a write in flight: its
			// key is known once that landed.
			h.store.settle(req.user.ID)
			key = req.chain.keyFor(t.previous)
		}
		prev, err := h.cfg.Responses.Response(req.user.ID, key)
		if err != nil {
			return nil, nil, h.storeError(err, req, apierror.PreviousResponseNotFound(t.previous))
		}
		prior = append(append(prior, replayed(prev.Input)...), responseOutput(prev.Response)...)
	}
	rewrite := t.previous != ""
	for i, it := range items {
		typ, id := itemTypeID(it)
		switch {
		case typ == "item_reference":
			param := "input[" + strconv.Itoa(i) + "].id"
			if id == "" {
				return nil, nil, apierror.InvalidRequest(param, "missing_required_parameter", "missing required parameter: '%s'", param)
			}
			found, e := h.referencedItem(req, prior, id, param)
			if e != nil {
				return nil, nil, e
			}
			items[i], rewrite = found, true
		case id == "":
			items[i] = withID(it, typ)
		}
	}
	t.input = append(prior, items...)
	if !rewrite {
		return body, t, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body.Raw(), &top); err != nil {
		return nil, nil, apierror.InvalidBody("invalid request body: %s", err.Error())
	}
	delete(top, "previous_response_id")
	top["input"] = rawList(t.input)
	out, err := json.Marshal(top)
	if err != nil {
		return nil, nil, apierror.InvalidBody("invalid request body: %s", err.Error())
	}
	return translate.SplitBody(out), t, nil
}

// replayed is a stored turn's input as a later turn continues it: without
// its compaction_trigger, which asked that turn (compaction v2) to compact
// what preceded it and is refused anywhere but last; the compaction item
// it answered is in the turn's output.
func replayed(input []json.RawMessage) []json.RawMessage {
	out := input[:0:0]
	for _, it := range input {
		if typ, _ := itemTypeID(it); typ != "compaction_trigger" {
			out = append(out, it)
		}
	}
	return out
}

// referencedItem finds the item id: in the chain being continued first,
// then in any response the user stored.
func (h *Handler) referencedItem(req *request, prior []json.RawMessage, id, param string) (json.RawMessage, *apierror.Error) {
	if it := findItem(prior, id); it != nil {
		return it, nil
	}
	r, err := h.cfg.Responses.ResponseByItem(req.user.ID, id)
	if err != nil {
		return nil, h.storeError(err, req, apierror.ItemNotFound(param, id))
	}
	if it := findItem(append(append([]json.RawMessage(nil), r.Input...), responseOutput(r.Response)...), id); it != nil {
		return it, nil
	}
	return nil, apierror.ItemNotFound(param, id)
}

// storeError maps a store read's failure: not found becomes notFound,
// anything else a 503 (logged).
func (h *Handler) storeError(err error, req *request, notFound *apierror.Error) *apierror.Error {
	if errors.Is(err, vault.ErrNotFound) {
		return notFound
	}
	h.log.Warn("reading stored responses failed", zap.String("request_id", req.id), zap.String("user_id", req.user.ID), zap.Error(err))
	return apierror.StoreUnavailable()
}

// inputItems reads input as a list of items: a string is one user message.
func inputItems(raw json.RawMessage) ([]json.RawMessage, bool) {
	r := bytes.TrimSpace(raw)
	if len(r) == 0 {
		return nil, false
	}
	switch r[0] {
	case '"':
		s, ok := jsonString(r)
		if !ok {
			return nil, false
		}
		msg, _ := json.Marshal(map[string]any{"type": "message", "role": "user",
			"content": []any{map[string]string{"type": "input_text", "text": s}}})
		return []json.RawMessage{msg}, true
	case '[':
		return translate.SplitItems(r)
	}
	return nil, false
}

// jsonString decodes a JSON string as encoding/json does, without its
// reflection for the common case; ok is false for anything else.
func jsonString(r json.RawMessage) (string, bool) {
	r = bytes.TrimSpace(r)
	if s, ok := translate.Unquote(r); ok {
		return s, true
	}
	var s string
	return s, json.Unmarshal(r, &s) == nil
}

// itemTypeID reads an item's type (message when it has only a role) and id.
func itemTypeID(item json.RawMessage) (typ, id string) { return translate.ItemTypeID(item) }

// findItem returns the item with id among items, nil if none.
func findItem(items []json.RawMessage, id string) json.RawMessage {
	for i := len(items) - 1; i >= 0; i-- {
		if _, iid := itemTypeID(items[i]); iid == id {
			return items[i]
		}
	}
	return nil
}

// responseOutput is a stored response object's output items. The
// response objects the proxy writes and stores spell "output" exactly, so
// the scanner finds it without decoding the rest; anything else is read
// by encoding/json.
func responseOutput(resp json.RawMessage) []json.RawMessage {
	if items, ok := translate.SplitItems(translate.Field(resp, "output")); ok {
		return items
	}
	var r struct {
		Output []json.RawMessage `json:"output"`
	}
	_ = json.Unmarshal(resp, &r)
	return r.Output
}

// itemPrefixes name the ids the proxy gives input items that came without
// one, as OpenAI's own ids look.
var itemPrefixes = map[string]string{
	"message": "msg_", "function_call": "fc_", "function_call_output": "fco_", "reasoning": "rs_",
	"custom_tool_call": "ctc_", "custom_tool_call_output": "ctco_",
}

// withID gives an item an id, so input_items lists and item_reference
// find it.
func withID(item json.RawMessage, typ string) json.RawMessage {
	prefix := itemPrefixes[typ]
	if prefix == "" {
		prefix = "item_"
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	t := bytes.TrimSpace(item)
	out := make([]byte, 0, len(t)+48)
	out = append(out, `{"id":"`...)
	out = append(out, prefix...)
	out = hex.AppendEncode(out, b[:])
	out = append(out, '"')
	if rest := bytes.TrimSpace(t[1:]); len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, t[1:]...)
}

// rawList is a JSON array of items.
func rawList(items []json.RawMessage) json.RawMessage {
	b := []byte{'['}
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']')
}

// isNull reports a missing or null JSON value.
func isNull(r json.RawMessage) bool {
	t := bytes.TrimSpace(r)
	return len(t) == 0 || string(t) == "null"
}

// isFalse reports a JSON false.
func isFalse(r json.RawMessage) bool { return string(bytes.TrimSpace(r)) == "false" }
