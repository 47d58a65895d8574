package claims

import (
	"testing"
	"time"
)

func TestParseRoundTrip(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	in := Claims{AccountID: "acc-1", PlanType: "plus", UserID: "user-1", Email: "a@b.c", Expiry: exp}
	got, err := Parse(Encode(in))
	if err != nil {
		t.Fatal(err)
	}
	if got != in {
		t.Fatalf("got %+v, want %+v", got, in)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tok := range []string{"", "abc", "a.b", "a.!!!.c", "a." + "bm90IGpzb24" + ".c", "a.b.c.d"} {
		if _, err := Parse(tok); err == nil {
			t.Errorf("Parse(%q) succeeded", tok)
		}
	}
}

func TestMergeFillsOnlyEmpty(t *testing.T) {
	a := Claims{AccountID: "acc"}
	b := Claims{AccountID: "other", PlanType: "pro", Email: "e@x"}
	got := a.Merge(b)
	if got.AccountID != "acc" || got.PlanType != "pro" || got.Email != "e@x" {
		t.Fatalf("merge: %+v", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Encode(Claims{AccountID: "x", Expiry: time.Unix(1, 0)}))
	f.Add("a.e30.c")
	f.Add("a.eyJleHAiOiIxIn0.c")
	f.Fuzz(func(t *testing.T, tok string) {
		_, _ = Parse(tok)
	})
}
