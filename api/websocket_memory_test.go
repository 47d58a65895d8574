package api

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
)

// rawUpgrade opens a client WebSocket as cheaply as a client can: a bare
// TCP connection that sends the upgrade, reads the 101 and then holds the
// socket, so that what the test measures is the proxy's side.
func rawUpgrade(t testing.TB, addr, key string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /v1/responses HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n", addr, key)
	res, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", res, err)
	}
	return c
}

// TestIdleSocketMemoryReport reports what an idle client WebSocket costs
// the proxy at rest: heap, goroutine stacks and goroutines per socket
// (the budget is 64 KiB). It reports; it asserts nothing about
// the numbers, which vary with the Go version and the allocator.
func TestIdleSocketMemoryReport(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 200 sockets")
	}
	e := newEnv(t)
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	_ = rawUpgrade(t, addr, testKey).Close() // warm the pools and lazy state up

	const n = 200
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	settle := func() {
		for range 50 { // until the last upgrade is being served
			e.h.sockets.mu.Lock()
			open := len(e.h.sockets.open)
			e.h.sockets.mu.Unlock()
			if open >= len(conns) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		for range 4 { // each cycle may halve an idle goroutine's stack
			runtime.GC()
		}
	}
	var before, after runtime.MemStats
	settle()
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	for range n {
		conns = append(conns, rawUpgrade(t, addr, testKey))
	}
	settle()
	runtime.ReadMemStats(&after)
	heap := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	stack := (int64(after.StackInuse) - int64(before.StackInuse)) / n
	perG := float64(runtime.NumGoroutine()-goroutines) / n
	t.Logf("an idle client WebSocket costs %d bytes of heap + %d bytes of goroutine stack = %.1f KiB (budget 64 KiB), %.1f goroutines",
		heap, stack, float64(heap+stack)/1024, perG)
}
