package translate

// This file lends the upstream event scanner to translators of other
// client dialects that live in packages of their own (translate/anthropic),
// so they read Codex events with the same one-pass scanner, and at the same
// cost per event, as the OpenAI translators here.

// EventView is one upstream Codex event, read in one pass. Every slice
// aliases the event's data and is valid as long as the Event is.
type EventView struct {
	e upstreamEvent
}

// ViewEvent reads ev; ok is false for data that is not a JSON object.
func ViewEvent(ev Event) (EventView, bool) {
	e, ok := parseEvent(ev)
	return EventView{e}, ok
}

// Type is the event type ("response.output_text.delta").
func (v EventView) Type() []byte { return v.e.typ }

// Delta is the raw JSON string of a *.delta event.
func (v EventView) Delta() []byte { return v.e.delta }

// ItemID is the raw JSON string item_id.
func (v EventView) ItemID() []byte { return v.e.itemID }

// OutputIndex is the event's output_index and whether it had one.
func (v EventView) OutputIndex() (int64, bool) { return v.e.outputIndex, v.e.hasOutputIdx }

// SummaryIndex is the event's summary_index (0 when absent).
func (v EventView) SummaryIndex() int64 { return v.e.summaryIndex }

// Item is the raw output item of an output_item event.
func (v EventView) Item() []byte { return v.e.item }

// Response is the raw Response object of a response.* event.
func (v EventView) Response() []byte { return v.e.response }

// Arguments is the raw JSON string of a *.done arguments event.
func (v EventView) Arguments() []byte { return v.e.arguments }

// Failure is the client error of a response.failed or error event.
func (v EventView) Failure() *Error { return failureFromEvent(v.e) }

// ResponseUsage reads the usage of the event's Response object.
func (v EventView) ResponseUsage() (Usage, bool) { return parseUsage(v.e.response) }

// ItemView is one upstream output item's raw fields.
type ItemView struct {
	// Type is the item type without quotes; the others are raw JSON.
	Type, ID, CallID, Name, Arguments, Content, Summary []byte
	// EncryptedContent is the reasoning item's raw encrypted_content.
	EncryptedContent []byte
}

// ViewItem reads an output item; ok is false when it is not an object with
// a type.
func ViewItem(raw []byte) (ItemView, bool) {
	it, ok := parseItem(raw)
	v := ItemView{Type: it.typ, ID: it.id, CallID: it.callID, Name: it.name, Arguments: it.callArguments(),
		Content: it.content, Summary: it.summary}
	if ok && string(it.typ) == "reasoning" {
		v.EncryptedContent = field(raw, "encrypted_content")
	}
	return v, ok
}

// Field returns the raw value of one top-level member of a JSON object.
func Field(obj []byte, name string) []byte { return field(obj, name) }

// Unquote decodes a raw JSON string token.
func Unquote(raw []byte) (string, bool) { return unquote(raw) }

// IsJSONString reports whether raw is exactly one valid JSON string token.
func IsJSONString(raw []byte) bool { return isJSONString(raw) }

// ForEachText calls fn with the raw "text" of every part of a raw array
// whose type is one of types.
func ForEachText(arr []byte, types []string, fn func(text []byte)) { forEachText(arr, types, fn) }

// AppendJSONString appends s as a JSON string literal, escaped as
// encoding/json does without HTML escaping.
func AppendJSONString(dst []byte, s string) []byte { return appendJSONStr(dst, s) }

// ErrIncomplete is the failure of a stream that ended before its terminal
// event.
func ErrIncomplete() *Error { return errIncomplete() }

// DerivePromptCacheKey is the prompt_cache_key derived from salt (the
// user), a system prompt and a first user message, as the OpenAI dialects
// derive theirs.
func DerivePromptCacheKey(salt, system, user string) string {
	return derivePromptCacheKey(salt, system, user)
}

// IsStringToken is the hot-path check that a raw value from an EventView
// is a string: the scanner has already validated its contents.
func IsStringToken(raw []byte) bool { return isStringToken(raw) }
