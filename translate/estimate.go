package translate

// BytesPerToken is the estimate's ratio: about four bytes of English text
// or JSON make one token in the Codex models' tokenizer.
const BytesPerToken = 4

// EstimateTokens estimates the tokens in n bytes of model input or output.
// It is what the proxy charges when a generation ends without the
// upstream's own usage (the client went away, the stream was cut): the
// request as sent upstream counts as its input, the output relayed so far
// as its output. Every front door counts the same way, so budgets treat
// all clients alike; it is rough, on the high side for JSON.
func EstimateTokens(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return (n + BytesPerToken - 1) / BytesPerToken
}
