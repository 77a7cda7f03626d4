package sdk

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow/memory"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	connectorv1 "github.com/datapulse/datapulse/plugins/proto/connector/v1"
)

// GRPCPlugin is the go-plugin plugin type of a connector, used on both
// sides:
//
//   - in the connector process, Serve registers GRPCPlugin{Impl: c}: its
//     GRPCServer serves c through the SDK's adapter;
//   - in the host, ClientConfig.VersionedPlugins is
//     {ProtocolVersion: {PluginName: &GRPCPlugin{}}}: Dispense(PluginName)
//     returns a connectorv1.ConnectorClient (the generated gRPC client),
//     which the host wraps.
//
// Connector authors do not use it directly: they call Serve.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl is the connector served; nil in the host.
	Impl Connector

	mem memory.Allocator // results' allocator; tests set a checked one
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the connector's adapter on the plugin's gRPC server.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	srv := newServer(p.Impl, nil)
	if p.mem != nil {
		srv.mem = p.mem
	}
	connectorv1.RegisterConnectorServer(s, srv)
	return nil
}

// GRPCClient returns a connectorv1.ConnectorClient over conn. ctx is
// cancelled by go-plugin when the connector process exits.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (interface{}, error) {
	return connectorv1.NewConnectorClient(conn), nil
}
