package keypolicy

import (
	"net/http"
	"testing"
	"time"
)

func TestImagesField(t *testing.T) {
	now := time.Now()
	tests := []struct {
		value string
		deny  bool
		text  string
	}{
		{"deny", true, "deny"}, {"no", true, "deny"}, {"allow", false, ""}, {"", false, ""}, {"ALLOW", false, ""},
	}
	for _, tt := range tests {
		p, err := Set(Policy{DenyImages: !tt.deny}, FieldImages, tt.value, now, nil)
		if err != nil || p.DenyImages != tt.deny || p.Text(FieldImages) != tt.text {
			t.Errorf("%q: %+v %v", tt.value, p, err)
		}
	}
	if _, err := Set(Policy{}, FieldImages, "maybe", now, nil); err == nil {
		t.Error("images maybe: want an error")
	}
	if (Policy{DenyImages: true}).IsZero() {
		t.Error("a policy denying images limits something")
	}
	if r := CheckImages(Policy{DenyImages: true}); r == nil || r.Status != http.StatusForbidden || r.Code != CodeImagesNotAllowed || !IsRefusalCode(r.Code) {
		t.Errorf("CheckImages: %+v", r)
	}
	if CheckImages(Policy{}) != nil {
		t.Error("the zero policy allows images")
	}
}
