package translate

// upstreamEvent holds the raw fields of one Codex Responses event that the
// translators act on. Every slice aliases the event's data.
type upstreamEvent struct {
	typ          []byte // without quotes
	delta        []byte // raw JSON string
	itemID       []byte // raw JSON string
	item         []byte // raw object
	response     []byte // raw object
	arguments    []byte // raw JSON string
	text         []byte // raw JSON string
	code         []byte // raw JSON string
	message      []byte // raw JSON string
	param        []byte // raw JSON string
	errObj       []byte // raw object
	outputIndex  int64
	summaryIndex int64
	hasOutputIdx bool
}

// parseEvent reads the fields of an upstream event in one pass over its data.
// The event type comes from the JSON "type" member, or from the SSE event
// name when the data has none.
func parseEvent(ev Event) (upstreamEvent, bool) {
	var e upstreamEvent
	it := newObjectIter(ev.Data)
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		switch string(k) {
		case "type":
			if len(v) >= 2 && v[0] == '"' {
				e.typ = v[1 : len(v)-1]
			}
		case "delta":
			e.delta = v
			// A text delta needs nothing after its delta: skip scanning
			// logprobs and sequence numbers on the hottest event.
			if len(e.itemID) > 0 && string(e.typ) == "response.output_text.delta" {
				return e, true
			}
		case "item_id":
			e.itemID = v
		case "output_index":
			e.outputIndex = parseInt(v)
			e.hasOutputIdx = true
		case "summary_index":
			e.summaryIndex = parseInt(v)
		case "item":
			e.item = v
		case "response":
			e.response = v
		case "arguments":
			e.arguments = v
		case "text":
			e.text = v
		case "code":
			e.code = v
		case "message":
			e.message = v
		case "param":
			e.param = v
		case "error":
			e.errObj = v
		}
	}
	if it.failed() {
		return e, false
	}
	if len(e.typ) == 0 {
		e.typ = ev.Name
	}
	return e, true
}

// upstreamItem holds the raw fields of an output item.
type upstreamItem struct {
	typ       []byte // without quotes
	id        []byte // raw JSON string
	callID    []byte // raw JSON string
	name      []byte // raw JSON string
	arguments []byte // raw JSON string
	input     []byte // raw JSON string (custom tool calls)
	content   []byte // raw array
	summary   []byte // raw array
}

func parseItem(raw []byte) (upstreamItem, bool) {
	var item upstreamItem
	it := newObjectIter(raw)
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		switch string(k) {
		case "type":
			if len(v) >= 2 && v[0] == '"' {
				item.typ = v[1 : len(v)-1]
			}
		case "id":
			item.id = v
		case "call_id":
			item.callID = v
		case "name":
			item.name = v
		case "arguments":
			item.arguments = v
		case "input":
			item.input = v
		case "content":
			item.content = v
		case "summary":
			item.summary = v
		}
	}
	return item, !it.failed() && len(item.typ) > 0
}

// isToolCall reports whether an output item is a call the client must run.
func (it upstreamItem) isToolCall() bool {
	t := string(it.typ)
	return t == "function_call" || t == "custom_tool_call"
}

// callArguments returns the call's arguments (custom tools carry "input").
func (it upstreamItem) callArguments() []byte {
	if isJSONString(it.arguments) {
		return it.arguments
	}
	if isJSONString(it.input) {
		return it.input
	}
	return nil
}

// forEachText calls fn with the raw "text" of every element of a raw array of
// parts whose type is one of the given types.
func forEachText(arr []byte, types []string, fn func(text []byte)) {
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return
	}
	i = skipSpace(arr, i+1)
	for i < len(arr) && arr[i] != ']' {
		end, ok := skipValue(arr, i, 0)
		if !ok {
			return
		}
		var typ, text []byte
		it := newObjectIter(arr[i:end])
		for {
			k, v, ok := it.next()
			if !ok {
				break
			}
			switch string(k) {
			case "type":
				typ = v
			case "text":
				text = v
			}
		}
		if isJSONString(text) && len(typ) >= 2 {
			for _, t := range types {
				if string(typ[1:len(typ)-1]) == t {
					fn(text)
					break
				}
			}
		}
		i = skipSpace(arr, end)
		if i < len(arr) && arr[i] == ',' {
			i = skipSpace(arr, i+1)
		}
	}
}

// field returns the raw value of one top-level member of obj.
func field(obj []byte, name string) []byte {
	it := newObjectIter(obj)
	for {
		k, v, ok := it.next()
		if !ok {
			return nil
		}
		if string(k) == name {
			return v
		}
	}
}
