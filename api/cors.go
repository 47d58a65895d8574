package api

import "net/http"

// EffortClampedHeader tells the client its reasoning effort was lowered by
// its key's policy: "xhigh->high".
const EffortClampedHeader = "X-Codex-Proxy-Effort-Clamped"

// setCORS allows browser clients (Open WebUI and the like) to call the API.
func (h *Handler) setCORS(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	for _, o := range h.cfg.CORSOrigins {
		if o == "*" || o == origin {
			w.Header().Set("Access-Control-Allow-Origin", o)
			if o != "*" {
				w.Header().Add("Vary", "Origin")
			}
			w.Header().Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After, X-Codex-Primary-Used-Percent, X-Codex-Secondary-Used-Percent, "+EffortClampedHeader)
			return
		}
	}
}

// preflight answers a CORS preflight: every header the OpenAI SDKs send.
func (h *Handler) preflight(w http.ResponseWriter) {
	w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Content-Encoding, X-Api-Key, Api-Key, OpenAI-Organization, OpenAI-Project, OpenAI-Beta, X-Stainless-Arch, X-Stainless-Lang, X-Stainless-OS, X-Stainless-Package-Version, X-Stainless-Retry-Count, X-Stainless-Runtime, X-Stainless-Runtime-Version, X-Stainless-Timeout")
	w.Header().Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}
