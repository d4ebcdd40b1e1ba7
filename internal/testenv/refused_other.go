//go:build !unix

package testenv

import (
	"net"
	"testing"
)

// RefusedAddr returns a loopback host:port where a TCP connect is refused.
// Without the unix socket calls the port is only found free and closed
// again, so another process could take it in between.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: listen: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
