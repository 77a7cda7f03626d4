package connectorv1_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates the Go code from connector.proto
// into a temporary directory and compares it with the committed files. It
// needs protoc, protoc-gen-go and protoc-gen-go-grpc on PATH (.ci/run
// installs them); without them it fails on CI and skips elsewhere.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	for _, tool := range []string{"protoc", "protoc-gen-go", "protoc-gen-go-grpc"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not on PATH: .ci/run installs it", tool)
			}
			t.Skipf("%s is not on PATH; install it to check the generated code", tool)
		}
	}
	out := t.TempDir()
	cmd := exec.Command("protoc", "--proto_path=.", "--go_out="+out, "--go_opt=paths=source_relative",
		"--go-grpc_out="+out, "--go-grpc_opt=paths=source_relative", "connector.proto")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, b)
	}
	for _, f := range []string{"connector.pb.go", "connector_grpc.pb.go"} {
		want, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go generate ./plugins/proto/... and commit the result", f)
		}
	}
}
