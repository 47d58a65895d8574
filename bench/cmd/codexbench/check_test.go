package main

import (
	"strings"
	"testing"
	"time"
)

// feed writes body to c in chunks of every size from 1 to len(body), so
// every split of "\n\n" is exercised.
func checkAllSplits(t *testing.T, kind checkKind, minEvents int, body string) []error {
	t.Helper()
	var errs []error
	for size := 1; size <= len(body); size++ {
		c := newBodyCheck(kind, minEvents)
		for i := 0; i < len(body); i += size {
			c.Write([]byte(body[i:min(i+size, len(body))]))
		}
		if int(c.bytes) != len(body) {
			t.Fatalf("counted %d bytes, want %d", c.bytes, len(body))
		}
		errs = append(errs, c.verdict())
	}
	return errs
}

func TestBodyCheck(t *testing.T) {
	long := strings.Repeat("x", 200)
	completed := "event: response.created\ndata: {\"type\":\"response.created\"}\n\n" +
		": keepalive\n\n" +
		"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"" + long + "\"}\n\n" +
		"event: response.completed\ndata: {\"type\":\"response.completed\"}\n\n"
	chat := "data: {\"choices\":[{\"delta\":{\"content\":\"" + long + "\"}}]}\n\n\ndata: {\"choices\":[]}\n\ndata: [DONE]\n\n"
	messages := "event: message_start\ndata: {\"type\":\"message_start\"}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"" + long + "\"}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	for _, tc := range []struct {
		name      string
		kind      checkKind
		minEvents int
		body      string
		ok        bool
	}{
		{"responses ok", checkResponses, 3, completed, true},
		{"responses too few events", checkResponses, 4, completed, false},
		{"responses cut", checkResponses, 1, completed[:len(completed)-1], false},
		{"responses without completed", checkResponses, 1, strings.TrimSuffix(completed, "event: response.completed\ndata: {\"type\":\"response.completed\"}\n\n"), false},
		{"responses error event", checkResponses, 1, "event: error\ndata: {\"type\":\"error\"}\n\n" + completed, false},
		{"chat ok", checkChat, 3, chat, true},
		{"chat error then done", checkChat, 1, "data: {\"error\":{\"message\":\"x\"}}\n\ndata: [DONE]\n\n", false},
		{"chat without done", checkChat, 1, strings.TrimSuffix(chat, "data: [DONE]\n\n"), false},
		{"messages ok", checkMessages, 3, messages, true},
		{"messages without stop", checkMessages, 1, strings.TrimSuffix(messages, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"), false},
		{"messages error event", checkMessages, 1, "event: error\ndata: {\"type\":\"error\"}\n\n" + messages, false},
		{"chat json ok", checkChatJSON, 3, `{"object":"chat.completion","choices":[{"finish_reason":"stop","message":{"content":"tok tok"}}]}`, true},
		{"chat json length", checkChatJSON, 3, `{"object":"chat.completion","choices":[{"finish_reason":"length","message":{"content":"tok tok"}}]}`, false},
		{"chat json broken", checkChatJSON, 3, `{"object":"chat.completion","choices":[`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for size, err := range checkAllSplits(t, tc.kind, tc.minEvents, tc.body) {
				if (err == nil) != tc.ok {
					t.Fatalf("chunk size %d: verdict %v, want ok=%v", size+1, err, tc.ok)
				}
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i))
	}
	if p := percentile(ds, 50); p != 50 {
		t.Fatalf("p50 = %d", p)
	}
	if p := percentile(ds, 99); p != 99 {
		t.Fatalf("p99 = %d", p)
	}
	if percentile(nil, 50) != 0 {
		t.Fatal("empty")
	}
}

func TestParseCPUList(t *testing.T) {
	got := parseCPUList("0-2,5, 7-8")
	want := []int{0, 1, 2, 5, 7, 8}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%v", got)
		}
	}
}

func TestSmokeDefaults(t *testing.T) {
	c, err := parseFlags([]string{"-fakecodex", "x", "-smoke", "-rounds", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if c.rounds != 2 || c.concurrency != 4 || c.slowStreams != 50 || c.profile != 0 {
		t.Fatalf("%+v", c)
	}
	if _, err := parseFlags([]string{"-fakecodex", "x", "-targets", "a,z"}); err == nil {
		t.Fatal("unknown target accepted")
	}
}

func TestFrameType(t *testing.T) {
	for frame, want := range map[string]string{
		`{"type":"response.completed","response":{}}`:               "response.completed",
		`{"sequence_number":3,"type":"response.output_text.delta"}`: "response.output_text.delta",
		`{"item":{"type":"message"},"type":"error"}`:                "error",
		`{"type":"a\"b"}`: `a"b`,
		`not json`:        "",
	} {
		if got := frameType([]byte(frame)); got != want {
			t.Errorf("frameType(%s) = %q, want %q", frame, got, want)
		}
	}
}
