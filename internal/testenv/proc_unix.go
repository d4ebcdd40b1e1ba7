//go:build unix && !linux

package testenv

import "syscall"

// procAttr puts the emulator in its own process group (no parent-death
// signal outside Linux: Main stops it at the end of the tests).
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
