package dashboard

import "net/http"

// NotFound answers a path the dashboard does not have with its 404 page:
// a heading in plain words and the way back. caddymodule also calls it for
// paths outside /v1/ that no later handler answered, so a typo on the site
// is a page, not a blank 200.
func (d *Dashboard) NotFound(w http.ResponseWriter, r *http.Request) {
	d.securityHeaders(w, r)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	d.render(w, r, http.StatusNotFound, "notfound", pageData{Title: "Page not found", Body: notFoundBody{Path: quoteInput(r.URL.Path)}})
}

type notFoundBody struct {
	Path string
}
