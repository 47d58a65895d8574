package cli

import (
	"encoding/json"
	"fmt"
)

// HandlersIn finds every HTTP handler named name ("codex_proxy") in an
// adapted Caddy JSON config, wherever it is nested (routes, subroutes,
// handle blocks), and returns each one's JSON: in config order within a
// route list, in no fixed order across the servers of a config (a JSON
// object).
func HandlersIn(adapted []byte, name string) ([]json.RawMessage, error) {
	var root any
	if err := json.Unmarshal(adapted, &root); err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	var found []map[string]any
	collectHandlers(root, name, &found)
	out := make([]json.RawMessage, 0, len(found))
	for _, h := range found {
		b, err := json.Marshal(h)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// collectHandlers walks decoded JSON for objects with "handler": name.
func collectHandlers(node any, name string, out *[]map[string]any) {
	switch n := node.(type) {
	case map[string]any:
		if n["handler"] == name {
			*out = append(*out, n)
			return
		}
		for _, v := range n {
			collectHandlers(v, name, out)
		}
	case []any:
		for _, v := range n {
			collectHandlers(v, name, out)
		}
	}
}
