// Command sdkconn is the smallest connector built on plugins/sdk: the host's
// tests use it to check that the SDK's parent-death watch ends a connector
// whose host was killed, and that the host and the SDK interoperate.
package main

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/datapulse/datapulse/plugins/sdk"
)

type conn struct{}

func (conn) Describe() sdk.Description {
	return sdk.Description{Name: "sdkconn", DisplayName: "SDK test connector", Version: "0.1.0",
		Capabilities: []string{sdk.CapabilitySQL}, ConfigSchema: []byte(`{"type":"object"}`), SQLDialect: "sqlite"}
}
func (conn) ValidateConfig(context.Context, sdk.Config) []sdk.FieldError { return nil }
func (conn) CheckHealth(context.Context, sdk.Config) (sdk.Health, error) {
	return sdk.Health{Message: "ok"}, nil
}
func (conn) ListNamespaces(context.Context, sdk.Config, sdk.Page) (sdk.NamespacePage, error) {
	return sdk.NamespacePage{Namespaces: []string{"main"}}, nil
}
func (conn) ListTables(context.Context, sdk.Config, string, sdk.Page) (sdk.TablePage, error) {
	return sdk.TablePage{}, nil
}
func (conn) DescribeTables(context.Context, sdk.Config, []sdk.TableRef) ([]sdk.TableInfo, error) {
	return nil, nil
}
func (conn) Dispose(string) {}

// Query returns 1000 rows (id 0..999) whatever the SQL.
func (conn) Query(_ context.Context, _ sdk.Config, q sdk.Query, w sdk.ResultWriter) error {
	if q.SQL == "hang" {
		select {} // ignores its context: the host must reclaim the process
	}
	s := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	if err := w.SetSchema(s); err != nil {
		return err
	}
	b := array.NewInt64Builder(w.Allocator())
	defer b.Release()
	for i := int64(0); i < 1000; i++ {
		b.Append(i)
	}
	col := b.NewArray()
	defer col.Release()
	rec := array.NewRecordBatch(s, []arrow.Array{col}, 1000)
	defer rec.Release()
	if err := w.Write(rec); err != nil && err != sdk.ErrLimitReached {
		return err
	}
	return nil
}

func main() { sdk.Serve(conn{}) }
