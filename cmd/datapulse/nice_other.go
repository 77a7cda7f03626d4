//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package main

func lowerPriority() {}
