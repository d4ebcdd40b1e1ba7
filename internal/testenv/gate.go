package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Gate is a TCP relay on loopback in front of a real service, which a test
// can close to simulate an outage (connections refused and in-flight ones
// cut) and open again, without losing the service's state: stopping an
// in-memory Azurite loses its data, and a persisted one takes 10-35 s to
// stop cleanly.
type Gate struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	open   bool
	conns  map[net.Conn]struct{}
	closed bool
}

// NewGate starts a relay to target (host:port); it is stopped when the test
// ends.
func NewGate(t testing.TB, target string) *Gate {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: gate: %v", err)
	}
	g := &Gate{ln: ln, target: target, open: true, conns: map[net.Conn]struct{}{}}
	go g.serve()
	t.Cleanup(g.stop)
	return g
}

// Addr returns the relay's host:port.
func (g *Gate) Addr() string { return g.ln.Addr().String() }

// Close starts an outage: open connections are cut and new ones are closed
// at once.
func (g *Gate) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = false
	for c := range g.conns {
		_ = c.Close()
	}
}

// Open ends an outage.
func (g *Gate) Open() {
	g.mu.Lock()
	g.open = true
	g.mu.Unlock()
}

func (g *Gate) stop() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	_ = g.ln.Close()
	g.Close()
}

func (g *Gate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		if !g.open || g.closed {
			g.mu.Unlock()
			_ = c.Close()
			continue
		}
		g.mu.Unlock()
		go g.relay(c)
	}
}

func (g *Gate) relay(c net.Conn) {
	var d net.Dialer
	up, err := d.DialContext(context.Background(), "tcp", g.target)
	if err != nil {
		_ = c.Close()
		return
	}
	g.mu.Lock()
	if !g.open {
		g.mu.Unlock()
		_ = c.Close()
		_ = up.Close()
		return
	}
	g.conns[c], g.conns[up] = struct{}{}, struct{}{}
	g.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	_ = c.Close()
	_ = up.Close()
	<-done
	g.mu.Lock()
	delete(g.conns, c)
	delete(g.conns, up)
	g.mu.Unlock()
}

// GatedConnectionString returns a connection string for this instance whose
// blob endpoint goes through a new Gate, and the Gate.
func (a *Azurite) GatedConnectionString(t testing.TB) (string, *Gate) {
	t.Helper()
	g := NewGate(t, fmt.Sprintf("127.0.0.1:%d", a.port))
	u := url.URL{Scheme: "http", Host: g.Addr(), Path: "/" + AccountName}
	return strings.Replace(a.ConnectionString(), a.BlobURL(), u.String(), 1), g
}
