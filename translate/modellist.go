package translate

// ModelObject is one entry of OpenAI's model list (GET /v1/models).
type ModelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// What the account's live catalog says of the model, each left out
	// when it does not say (or the static catalog answered): its context
	// window in tokens and the largest it can be raised to, the reasoning
	// efforts it accepts and the default one, and the service tiers it
	// offers beyond the default ("priority", the Fast tier) and the
	// default tier.
	ContextWindow          int      `json:"context_window,omitempty"`
	MaxContextWindow       int      `json:"max_context_window,omitempty"`
	ReasoningEfforts       []string `json:"reasoning_efforts,omitempty"`
	DefaultReasoningEffort string   `json:"default_reasoning_effort,omitempty"`
	ServiceTiers           []string `json:"service_tiers,omitempty"`
	DefaultServiceTier     string   `json:"default_service_tier,omitempty"`
}

// modelCreated is the fixed "created" of every listed model: the upstream
// reports none, and clients only need a plausible Unix time.
const modelCreated = 1700000000

// ModelList is the model list a user sees: the upstream's slugs for their
// plan in upstream order (nil when the upstream catalog is unavailable),
// then c's visible models not already listed. Empty IDs are skipped.
func (c *Catalog) ModelList(upstream []string) []ModelObject {
	models := c.Models()
	list := make([]ModelObject, 0, len(upstream)+len(models))
	seen := make(map[string]bool, cap(list))
	add := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			list = append(list, ModelObject{ID: id, Object: "model", Created: modelCreated, OwnedBy: "openai"})
		}
	}
	for _, id := range upstream {
		add(id)
	}
	for _, m := range models {
		add(m.ID)
	}
	return list
}
