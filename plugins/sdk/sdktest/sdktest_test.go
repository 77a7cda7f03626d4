package sdktest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/datapulse/datapulse/plugins/sdk"
	"github.com/datapulse/datapulse/plugins/sdk/sdktest"
)

// memConn is an in-memory connector; broken makes it misbehave in ways the
// suite must catch.
type memConn struct{ broken bool }

func (m memConn) Describe() sdk.Description {
	secret := `"x-secret": true`
	if m.broken {
		secret = `"description": "not marked"`
	}
	return sdk.Description{Name: "mem", DisplayName: "Memory", Version: "1.0.0",
		ConfigSchema: json.RawMessage(`{"type": "object", "properties": {"size": {"type": "integer"}, "token": {"type": "string", ` + secret + `}}, "additionalProperties": false}`)}
}

func (m memConn) ValidateConfig(ctx context.Context, cfg sdk.Config) []sdk.FieldError {
	var c struct {
		Size  int    `json:"size"`
		Token string `json:"token"`
	}
	if err := cfg.Decode(&c); err != nil {
		return sdk.AsFieldErrors(err)
	}
	if c.Size < 0 {
		return []sdk.FieldError{{Field: "/size", Message: "must not be negative"}}
	}
	return nil
}

func (m memConn) CheckHealth(ctx context.Context, cfg sdk.Config) (sdk.Health, error) {
	if fes := m.ValidateConfig(ctx, cfg); len(fes) > 0 {
		return sdk.Health{}, sdk.FieldErrors(fes)
	}
	return sdk.Health{}, nil
}

func (m memConn) ListNamespaces(ctx context.Context, cfg sdk.Config, p sdk.Page) (sdk.NamespacePage, error) {
	return sdk.NamespacePage{Namespaces: []string{"main"}}, nil
}

func (m memConn) ListTables(ctx context.Context, cfg sdk.Config, ns string, p sdk.Page) (sdk.TablePage, error) {
	if ns != "main" {
		return sdk.TablePage{}, sdk.Errorf(sdk.CodeNotFound, "no namespace %q", ns)
	}
	all := []sdk.TableRef{{Namespace: "main", Name: "numbers"}, {Namespace: "main", Name: "people"}}
	page, next, err := sdk.PageOf(all, p)
	if m.broken && next != "" {
		next = "always-the-same"
	}
	if m.broken && p.Token == "always-the-same" {
		page, next, err = all[1:], "always-the-same", nil
	}
	return sdk.TablePage{Tables: page, NextToken: next}, err
}

func (m memConn) DescribeTables(ctx context.Context, cfg sdk.Config, refs []sdk.TableRef) ([]sdk.TableInfo, error) {
	var out []sdk.TableInfo
	for _, r := range refs {
		if r.Name != "numbers" && r.Name != "people" {
			return nil, sdk.Errorf(sdk.CodeNotFound, "no table %q", r.Name)
		}
		out = append(out, sdk.TableInfo{Ref: r, Columns: []sdk.Column{{Name: "n", NativeType: "int", Type: arrow.PrimitiveTypes.Int64}}})
	}
	return out, nil
}

func (m memConn) Dispose(string) {}

func (m memConn) Query(ctx context.Context, cfg sdk.Config, q sdk.Query, w sdk.ResultWriter) error {
	text := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	switch q.SQL {
	case "PEOPLE":
		w.SetSchema(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "name", Type: arrow.BinaryTypes.String}}, nil))
		rows := w.Rows()
		for i, n := range []string{"ada", "grace"} {
			if err := rows.Append(i+1, n); err != nil {
				return err
			}
		}
		return nil
	case "MANY":
		w.SetSchema(arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil))
		rows := w.Rows()
		for i := range 1500 {
			if err := rows.Append(i); err != nil {
				return err
			}
		}
		return nil
	case "ECHO":
		w.SetSchema(text)
		v := q.Params[0]
		if m.broken { // "splices" the value, and loses what follows a quote
			v = strings.SplitN(fmt.Sprint(v), "'", 2)[0]
		}
		return w.Rows().Append(v)
	case "SLOW":
		if m.broken {
			time.Sleep(2500 * time.Millisecond) // ignores the context
			return nil
		}
		<-ctx.Done()
		return ctx.Err()
	case "DELETE":
		if m.broken {
			return w.SetSchema(text)
		}
		return sdk.Errorf(sdk.CodePermissionDenied, "read-only")
	}
	return sdk.Errorf(sdk.CodeInvalidArgument, "unknown query %q", q.SQL)
}

var config = sdktest.Config{
	ValidConfig:     `{"size": 1}`,
	ValidSecrets:    map[string]string{"token": "tok-secret"},
	InvalidConfig:   `{"size": -1}`,
	KnownQuery:      "PEOPLE",
	KnownRows:       [][]any{{1, "ada"}, {2, "grace"}},
	EchoQuery:       "ECHO",
	ManyRowsQuery:   "MANY",
	SlowQuery:       "SLOW",
	WriteStatements: []string{"DELETE"},
	Tables:          []sdk.TableRef{{Namespace: "main", Name: "people"}},
}

// A correct connector passes.
func TestSuitePasses(t *testing.T) {
	sdktest.Run(t, memConn{}, config)
}

// TestBrokenHelper is run by TestSuiteCatchesBrokenConnector in a child
// process: it must fail.
func TestBrokenHelper(t *testing.T) {
	if os.Getenv("SDKTEST_BROKEN") != "1" {
		t.Skip("run by TestSuiteCatchesBrokenConnector")
	}
	sdktest.Run(t, memConn{broken: true}, config)
}

// A connector that leaves a secret unmarked, pages forever, splices
// parameters, ignores cancellation and accepts writes fails the suite with
// each of these named.
func TestSuiteCatchesBrokenConnector(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: waits out a connector that ignores cancellation")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "SDKTEST_BROKEN=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the suite passed a broken connector:\n%s", out)
	}
	for _, want := range []string{
		`secret "token" is not marked "x-secret": true`,
		`page token "always-the-same" repeats`,
		`EchoQuery with "it's \"quoted\" '; DROP TABLE x; --" returned`,
		"after the cancellation",
		"write statement accepted: DELETE",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the suite did not report %q:\n%s", want, out)
		}
	}
}
