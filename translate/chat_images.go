package translate

import "encoding/json"

// Images in Chat Completions. An image_generation_call (the hosted
// image_generation tool) reaches a chat client as an image content part,
// {"type":"image_url","image_url":{"url":"data:image/png;base64,…"}}, the
// shape the OpenAI SDKs type as ChatCompletionContentPartImage, in the
// message's (or the chunk delta's) "images" list. content stays a string,
// so every SDK's types for the rest of the message hold.

// chatImagePart is one image content part.
type chatImagePart struct {
	Type     string `json:"type"`
	ImageURL struct {
		URL string `json:"url"`
	} `json:"image_url"`
}

// imageCallPart makes the content part of an image_generation_call item;
// ok is false for any other item or one without a result.
func imageCallPart(raw []byte) (chatImagePart, bool) {
	var it imageItem
	if json.Unmarshal(raw, &it) != nil || it.Type != "image_generation_call" || it.Result == "" {
		return chatImagePart{}, false
	}
	p := chatImagePart{Type: "image_url"}
	mime := "image/" + orStr(it.OutputFormat, "png")
	p.ImageURL.URL = "data:" + mime + ";base64," + it.Result
	return p, true
}

// appendImageDelta appends the chunk that carries an image.
func (s *ChatStream) appendImageDelta(dst []byte, p chatImagePart) []byte {
	b, _ := json.Marshal([]chatImagePart{p})
	return s.appendDelta(dst, `{"images":`, b, `}`)
}
