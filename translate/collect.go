package translate

// ResponseCollector rebuilds a Responses API response from its upstream
// events as a relay passes them on, for the proxy's response store. It
// keeps what the response is made of — each output item (its done copy,
// or its deltas until that arrives) and the terminal event's response
// object — and never the events themselves, so a long stream costs about
// the size of its output. The zero value is not usable; make one with
// NewResponseCollector.
type ResponseCollector struct {
	c     collector
	names ToolNames
	ids   CallIDs
}

// NewResponseCollector returns a collector whose response has the client's
// tool names and call ids restored, as AggregateResponses does.
func NewResponseCollector(names ToolNames, ids CallIDs) *ResponseCollector {
	return &ResponseCollector{names: names, ids: ids}
}

// Observe takes one upstream event; it reports whether the response has
// ended (a terminal event: completed, incomplete, failed or error). Ev's
// buffers may be reused once it returns.
func (rc *ResponseCollector) Observe(ev Event) bool { return rc.c.observe(ev) }

// Response is the response object, as AggregateResponses makes it from
// the whole stream, and the stream's result; a stream that has not ended
// is an incomplete one.
func (rc *ResponseCollector) Response() ([]byte, StreamResult) {
	if !rc.c.finished && rc.c.res.Err == nil {
		rc.c.res.Err = errIncomplete()
	}
	return rc.c.responsesBody(rc.names, rc.ids)
}
