//go:build !unix

package testenv

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }

// signalGroup is a no-op where process groups do not exist; the caller
// kills the process itself.
func signalGroup(int, syscall.Signal) {}
