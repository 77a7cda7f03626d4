package sdk

import (
	"os"
	"time"

	hclog "github.com/hashicorp/go-hclog"
)

// parentPollInterval is how often the parent-death fallback checks.
const parentPollInterval = time.Second

// exitFunc ends the process; tests replace it.
var exitFunc = os.Exit

// watchParent makes the process exit when its parent dies. On Linux the
// kernel signals it at once (PR_SET_PDEATHSIG); everywhere, a goroutine
// also compares os.Getppid() with the original parent every second
// (re-parenting to init or a subreaper changes it).
func watchParent(log hclog.Logger) {
	ppid := os.Getppid()
	armParentDeathSignal(log, ppid)
	go pollParent(log, ppid, os.Getppid, parentPollInterval, nil)
}

// pollParent exits when getppid() stops returning ppid. stop, when closed,
// ends the loop (tests).
func pollParent(log hclog.Logger, ppid int, getppid func() int, every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if getppid() != ppid {
				parentGone(log, ppid)
				return
			}
		}
	}
}

func parentGone(log hclog.Logger, ppid int) {
	log.Warn("host process exited; connector stopping", "parent_pid", ppid)
	exitFunc(3)
}
