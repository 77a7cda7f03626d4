//go:build linux

package host

import (
	"os"
	"os/exec"
	"syscall"
)

// lockStartThread: on Linux the connector gets SIGKILL when the OS thread
// that forked it dies (PR_SET_PDEATHSIG). The Go runtime may retire threads,
// so the forking goroutine is locked to its thread and stays there while the
// child lives (golang/go#27505, moby/moby#44215). If the server process dies
// (even by SIGKILL) the kernel kills every connector at once.
const lockStartThread = true

func setSysProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true, // own process group: kill(-pgid) reaches grandchildren
		Pdeathsig: syscall.SIGKILL,
	}
}

// selfExecutable is the running binary. /proc/self/exe pins the inode that
// is running, so a binary replaced on disk during an upgrade cannot produce a
// connector that speaks another protocol version.
func selfExecutable() (string, error) {
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		return "/proc/self/exe", nil
	}
	return os.Executable()
}

// killGroup sends SIGKILL to the process group led by pid.
func killGroup(pid int) {
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// processExists reports whether pid is a live process.
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
