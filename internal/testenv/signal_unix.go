//go:build unix

package testenv

import "syscall"

// signalGroup sends sig to the emulator's process group: npm's shim may
// have started node as a child.
func signalGroup(pid int, sig syscall.Signal) { _ = syscall.Kill(-pid, sig) }
