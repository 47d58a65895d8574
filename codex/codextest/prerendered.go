package codextest

import (
	"net/http"
)

// prerenderedFrames renders the fast-path stream once: created, n text
// deltas, done events and completed.
func prerenderedFrames(n int) [][]byte {
	g := newGen("gpt-5.5", nil)
	g.respID = "resp_prerendered"
	g.start()
	deltas := make([]string, n)
	for i := range deltas {
		deltas[i] = "tok "
	}
	g.message(deltas...)
	g.setUsage(100, false)
	g.completed(false)
	frames := make([][]byte, len(g.evs))
	for i, ev := range g.evs {
		frames[i] = frame(ev.typ, i, ev.data)
	}
	return frames
}

// servePrerendered writes the pre-rendered stream, at once or paced.
func (s *Server) servePrerendered(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("openai-model", "gpt-5.5")
	w.WriteHeader(http.StatusOK)
	if s.opts.PrerenderedDelay <= 0 {
		w.Write(s.prerender)
		return
	}
	rc := http.NewResponseController(w)
	for i, f := range s.prerenderFrames {
		if i > 0 && sleep(r.Context(), s.opts.PrerenderedDelay) != nil {
			return
		}
		if _, err := w.Write(f); err != nil {
			return
		}
		rc.Flush()
	}
}
