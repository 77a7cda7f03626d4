// Package sdk is what a connector author imports to build a DataPulse
// connector: implement Connector and call Serve. It imports nothing else of
// DataPulse, and authors never see the protocol's protobuf types.
package sdk

import plugin "github.com/hashicorp/go-plugin"

// ProtocolVersion is the connector protocol this SDK speaks
// (plugins/proto/connector/v1).
const ProtocolVersion = 1

// PluginName is the name the connector is dispensed under.
const PluginName = "connector"

// Handshake is shared by the host and every connector. The cookie is not a
// secret: it only stops a connector binary run by hand from waiting forever.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "DATAPULSE_CONNECTOR",
	MagicCookieValue: "3f6c1d0b9a7e4c52b8d1e6f07a2c9b4d",
}
