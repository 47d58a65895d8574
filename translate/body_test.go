package translate

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestSplitBody: a split body reads its members and translates exactly as
// NormalizeResponses does the raw body, refusals included.
func TestSplitBody(t *testing.T) {
	deep := `{"model":"gpt-5.5","input":"x","tools":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`
	cases := []struct {
		body string
		ok   bool // a JSON object the translators take
	}{
		{`{"model":"gpt-5.5","input":"hi","store":false,"previous_response_id":"resp_1"}`, true},
		{`{"model":"gpt-5.5","input":[{"type":"message","role":"user","content":"hi"}]}`, true},
		{`{"model":"gpt-5.5","input":[]}`, true},
		{``, false}, {`[]`, false}, {`null`, false}, {`{"model":`, false}, {deep, false},
	}
	for _, c := range cases {
		b := SplitBody([]byte(c.body))
		got, gerr := NormalizeResponsesBody(b, RequestOptions{})
		want, werr := NormalizeResponses([]byte(c.body), RequestOptions{})
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gerr, werr) {
			t.Errorf("%.40s: split %v, %v; raw %v, %v", c.body, got, gerr, want, werr)
		}
		if b.OK() != c.ok {
			t.Errorf("%.40s: OK() = %v", c.body, b.OK())
		}
		if string(b.Raw()) != c.body {
			t.Errorf("Raw() = %q", b.Raw())
		}
	}
	b := SplitBody([]byte(cases[0].body))
	if string(b.Member("store")) != "false" || string(b.Member("previous_response_id")) != `"resp_1"` || b.Member("absent") != nil {
		t.Errorf("members: store %s, previous_response_id %s", b.Member("store"), b.Member("previous_response_id"))
	}
	if SplitBody([]byte(`[1]`)).Member("input") != nil {
		t.Error("a body that is not an object has members")
	}
}

func TestSplitItems(t *testing.T) {
	for raw, want := range map[string]int{
		`[{"a":1}, {"b":[2]} ]`: 2, `[]`: -1, `[{"a":1},2]`: -1, `"x"`: -1, `{"a":1}`: -1, `[ {} ]`: 1,
	} {
		items, ok := SplitItems(json.RawMessage(raw))
		if (want < 0) == ok || ok && len(items) != want {
			t.Errorf("SplitItems(%s) = %q, %v", raw, items, ok)
		}
	}
}

// FuzzItemTypeID holds ItemTypeID to the encoding/json decoding it
// replaced, on valid JSON.
func FuzzItemTypeID(f *testing.F) {
	for _, s := range []string{
		`{"type":"message","id":"msg_1","role":"user"}`, `{"role":"user","content":"x"}`,
		`{"Type":"function_call","ID":"fc_1"}`, `{"type":"a","type":"b","id":1}`, `{"role":null}`,
		`{"t\u0079pe":"x","id":"caf\u00e9"}`, `{"":1,"id":"x"}`, `[1]`, `{"type":null,"role":"a"}`,
		"{\"id\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, item []byte) {
		if !json.Valid(item) {
			return
		}
		gt, gid := ItemTypeID(item)
		wt, wid := itemTypeIDJSON(item)
		if gt != wt || gid != wid {
			t.Fatalf("ItemTypeID(%q) = %q, %q; encoding/json %q, %q", item, gt, gid, wt, wid)
		}
	})
}

// BenchmarkResponsesChainSplit is what api's response chain reads of a
// 150 KB /v1/responses body (store, previous_response_id, input, each
// item's type and id) before translation, on the split the translator
// then reuses; BenchmarkResponsesChainJSON is the same by encoding/json,
// as it was.
func BenchmarkResponsesChainSplit(b *testing.B) {
	body := benchResponsesBody(b, 150<<10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		s := SplitBody(body)
		_ = s.Member("store")
		_ = s.Member("previous_response_id")
		items, _ := SplitItems(s.Member("input"))
		for _, it := range items {
			ItemTypeID(it)
		}
	}
}

func BenchmarkResponsesChainJSON(b *testing.B) {
	body := benchResponsesBody(b, 150<<10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var top map[string]json.RawMessage
		_ = json.Unmarshal(body, &top)
		var items []json.RawMessage
		_ = json.Unmarshal(top["input"], &items)
		for _, it := range items {
			itemTypeIDJSON(it)
		}
	}
}

// benchResponsesBody is the /v1/responses body of a bench conversation of
// about size bytes of chat input.
func benchResponsesBody(tb testing.TB, size int) []byte {
	tb.Helper()
	rounds := 12
	chat := rqBenchConversation(rounds)
	for len(chat) < size {
		rounds += max(1, rounds*(size-len(chat))/len(chat))
		chat = rqBenchConversation(rounds)
	}
	m, err := ChatToResponses(chat, RequestOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return m.Body
}
