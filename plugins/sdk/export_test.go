package sdk

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	hclog "github.com/hashicorp/go-hclog"

	connectorv1 "github.com/datapulse/datapulse/plugins/proto/connector/v1"
)

// DecodeParams exposes the server's parameter decoding to tests.
func DecodeParams(ps []*connectorv1.Parameter) ([]any, error) { return decodeParams(ps) }

// NewTestPlugin returns a GRPCPlugin whose results use mem.
func NewTestPlugin(c Connector, mem memory.Allocator) *GRPCPlugin {
	return &GRPCPlugin{Impl: c, mem: mem}
}

// PollParent runs the parent-death fallback with a fake getppid and exit.
func PollParent(ppid int, getppid func() int, every time.Duration, exit func(int), stop <-chan struct{}) {
	old := exitFunc
	exitFunc = exit
	defer func() { exitFunc = old }()
	pollParent(hclog.NewNullLogger(), ppid, getppid, every, stop)
}

// Scrub exposes secret scrubbing.
var Scrub = scrub
