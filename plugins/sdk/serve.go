package sdk

import (
	"os"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// MaxRequestBytes is the largest request a connector accepts from the host.
// Requests carry a configuration, SQL and parameters: a few MiB is plenty.
const MaxRequestBytes = 8 << 20

// Serve runs c as a connector plugin: it answers go-plugin's handshake on
// stdout, serves the connector protocol over gRPC and returns only when the
// host ends the process. Call it from main and do nothing else: nothing may
// be printed to stdout before it.
//
// The process exits when its parent (the host) dies, so a killed host leaves
// no connector behind. Logs go to stderr as JSON for the host to collect.
//
// Run by hand (without the host), the binary prints a message and exits.
func Serve(c Connector) {
	d := c.Describe()
	name := d.Name
	if name == "" {
		name = "connector"
	}
	// hclog writes to the real stderr: go-plugin later replaces os.Stderr
	// with a pipe of its own.
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      logLevel(),
		Output:     os.Stderr,
		JSONFormat: true,
	})
	setLogger(logger)
	if os.Getenv(Handshake.MagicCookieKey) == Handshake.MagicCookieValue {
		watchParent(logger)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			ProtocolVersion: {PluginName: &GRPCPlugin{Impl: c}},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return plugin.DefaultGRPCServer(append(opts, grpc.MaxRecvMsgSize(MaxRequestBytes)))
		},
		Logger: logger,
	})
}
