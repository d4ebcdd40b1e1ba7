package testenv

import "syscall"

// procAttr puts the emulator in its own process group and has the kernel
// SIGKILL it when its parent (the test binary) dies.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
