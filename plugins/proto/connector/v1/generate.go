// Package connectorv1 is the generated Go code of connector.proto, the
// DataPulse connector protocol. Regenerate with `go generate ./plugins/proto/...`
// (needs protoc, protoc-gen-go v1.36.12 and protoc-gen-go-grpc v1.6.2).
package connectorv1

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative connector.proto
