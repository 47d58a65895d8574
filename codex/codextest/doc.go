// Package codextest is an in-process fake of the ChatGPT Codex backend and
// its OAuth server, faithful to docs/protocol.md: it validates requests
// the way the real backend does (with the real error texts), streams
// scripted SSE scenarios, rotates refresh tokens and runs the device-code
// flow. Every test in the project uses it instead of the network.
//
// The package deliberately does not import package codex: a fake sharing
// code with the client it tests would agree with that client's bugs.
//
// Typical use:
//
//	srv := codextest.New(t)
//	tok := srv.AddAccount("acc-1", "a@example.com", "plus")
//	// point the client at srv.URL and the OAuth code at srv.IssuerURL
package codextest
