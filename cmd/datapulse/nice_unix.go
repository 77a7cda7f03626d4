//go:build linux || darwin || freebsd || netbsd || openbsd

package main

import "syscall"

// lowerPriority makes this process yield the CPU to the server it backs up
// (nice 10); failure is harmless.
func lowerPriority() { syscall.Setpriority(syscall.PRIO_PROCESS, 0, 10) } //nolint:errcheck // best effort
