package keypolicy

import (
	"errors"
	"testing"
	"time"
)

func TestServiceTierField(t *testing.T) {
	now := time.Now()
	tests := []struct {
		value, want string
	}{
		{"deny", TierDeny}, {"FORCE", TierForce}, {"allow", ""}, {"", ""}, {" Deny ", TierDeny},
	}
	for _, tt := range tests {
		p, err := Set(Policy{ServiceTier: TierForce}, FieldServiceTier, tt.value, now, nil)
		if err != nil || p.ServiceTier != tt.want || p.Text(FieldServiceTier) != tt.want || p.Validate(now) != nil {
			t.Errorf("%q: %+v %v", tt.value, p, err)
		}
	}
	if _, err := Set(Policy{}, FieldServiceTier, "fast", now, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("service-tier fast: want ErrInvalid, got %v", err)
	}
	if err := (Policy{ServiceTier: "priority"}).Validate(now); !errors.Is(err, ErrInvalid) {
		t.Errorf("a stored policy with tier priority: want ErrInvalid, got %v", err)
	}
	if (Policy{ServiceTier: TierDeny}).IsZero() {
		t.Error("a policy denying the Fast tier limits something")
	}
}
