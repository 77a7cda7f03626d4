// Command hostproc is a stand-in server for the host's parent-death test: it
// starts one connector, prints the connector's pid, and waits to be killed.
//
//	hostproc host <exe> <name>  starts it through plugins/host (as the server does)
//	hostproc raw <exe> <name>   starts it with a bare go-plugin client: no
//	                            parent-death signal from the host side, so
//	                            only the connector's own watch (the SDK's)
//	                            can end it
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"

	"github.com/datapulse/datapulse/plugins/host"
	"github.com/datapulse/datapulse/plugins/sdk"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: hostproc host|raw <exe> <name>")
		os.Exit(2)
	}
	mode, exe, name := os.Args[1], os.Args[2], os.Args[3]
	var pid int
	switch mode {
	case "host":
		h, err := host.New(context.Background(), host.Options{
			Executable: exe, Builtins: []string{name},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			fail(err)
		}
		for _, c := range h.Connectors(context.Background()) {
			if c.Name == name {
				pid = c.PID
				if pid == 0 {
					fail(fmt.Errorf("connector not running: %s %s", c.Status, c.LastError))
				}
			}
		}
	case "raw":
		cmd := exec.Command(exe, "plugin", "serve", name)
		client := plugin.NewClient(&plugin.ClientConfig{
			HandshakeConfig:  sdk.Handshake,
			VersionedPlugins: map[int]plugin.PluginSet{sdk.ProtocolVersion: {sdk.PluginName: &sdk.GRPCPlugin{}}},
			Cmd:              cmd,
			AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
			AutoMTLS:         true,
			Logger:           hclog.New(&hclog.LoggerOptions{Output: io.Discard}),
		})
		if _, err := client.Start(); err != nil {
			fail(err)
		}
		pid = cmd.Process.Pid
	default:
		fail(fmt.Errorf("unknown mode %q", mode))
	}
	fmt.Println(pid)
	select {}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "hostproc:", err)
	os.Exit(1)
}
