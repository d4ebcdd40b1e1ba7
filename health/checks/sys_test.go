package checks_test

import "syscall"

func syscallECONNREFUSED() error { return syscall.ECONNREFUSED }
