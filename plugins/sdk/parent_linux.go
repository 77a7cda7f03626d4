//go:build linux

package sdk

import (
	"os"
	"os/signal"
	"syscall"

	hclog "github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// parentDeathSignal is what the kernel sends when the parent dies. It is not
// SIGTERM or SIGKILL: the kernel also sends it when merely the parent's
// *thread* that started us exits (prctl(2)), so the handler checks that the
// parent process is really gone before exiting.
const parentDeathSignal = syscall.SIGUSR2

func armParentDeathSignal(log hclog.Logger, ppid int) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, parentDeathSignal)
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(parentDeathSignal), 0, 0, 0); err != nil {
		log.Debug("PR_SET_PDEATHSIG unavailable; polling the parent only", "error", err)
		signal.Stop(ch)
		return
	}
	// The parent may have died before prctl took effect.
	if os.Getppid() != ppid {
		parentGone(log, ppid)
		return
	}
	go func() {
		for range ch {
			if os.Getppid() != ppid {
				parentGone(log, ppid)
				return
			}
		}
	}()
}
