package translate

import "strconv"

// Usage is the token accounting of one response, in the Responses API's
// terms; the chat side renames the fields on output.
type Usage struct {
	InputTokens     int64
	OutputTokens    int64
	CachedTokens    int64
	ReasoningTokens int64
	TotalTokens     int64
	// ImageInputTokens and ImageOutputTokens are the image model's tokens
	// (response.tool_usage.image_gen), already counted in InputTokens and
	// OutputTokens: budgets and the request log count them like any other.
	ImageInputTokens  int64
	ImageOutputTokens int64
}

// parseUsage reads response.usage from a raw Response object.
func parseUsage(response []byte) (Usage, bool) {
	raw := field(response, "usage")
	if len(raw) == 0 || raw[0] != '{' {
		return Usage{}, false
	}
	var u Usage
	it := newObjectIter(raw)
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		switch string(k) {
		case "input_tokens":
			u.InputTokens = parseInt(v)
		case "output_tokens":
			u.OutputTokens = parseInt(v)
		case "total_tokens":
			u.TotalTokens = parseInt(v)
		case "input_tokens_details":
			u.CachedTokens = parseInt(field(v, "cached_tokens"))
		case "output_tokens_details":
			u.ReasoningTokens = parseInt(field(v, "reasoning_tokens"))
		}
	}
	if u.TotalTokens == 0 {
		u.TotalTokens = u.InputTokens + u.OutputTokens
	}
	if ig := field(field(response, "tool_usage"), "image_gen"); len(ig) > 0 && ig[0] == '{' {
		u.ImageInputTokens = parseInt(field(ig, "input_tokens"))
		u.ImageOutputTokens = parseInt(field(ig, "output_tokens"))
		u.InputTokens += u.ImageInputTokens
		u.OutputTokens += u.ImageOutputTokens
		u.TotalTokens += u.ImageInputTokens + u.ImageOutputTokens
	}
	return u, true
}

// appendChatUsage appends the usage object in Chat Completions terms.
func appendChatUsage(dst []byte, u Usage) []byte {
	dst = append(dst, `{"prompt_tokens":`...)
	dst = strconv.AppendInt(dst, u.InputTokens, 10)
	dst = append(dst, `,"completion_tokens":`...)
	dst = strconv.AppendInt(dst, u.OutputTokens, 10)
	dst = append(dst, `,"total_tokens":`...)
	dst = strconv.AppendInt(dst, u.TotalTokens, 10)
	dst = append(dst, `,"prompt_tokens_details":{"cached_tokens":`...)
	dst = strconv.AppendInt(dst, u.CachedTokens, 10)
	dst = append(dst, `},"completion_tokens_details":{"reasoning_tokens":`...)
	dst = strconv.AppendInt(dst, u.ReasoningTokens, 10)
	return append(dst, `}}`...)
}
