package datamodels

import (
	"slices"
	"strings"
	"testing"

	"github.com/datapulse/datapulse/core/models"
	"github.com/datapulse/datapulse/plugins/sdk"
)

// A model on a connector whose dialect the compiler does not know is
// refused when saved (and reported by /check), naming data_source_id.
func TestUnsupportedDialect(t *testing.T) {
	for _, d := range []string{"postgres", "postgresql", "mysql", "mariadb", "sqlite", "ansi"} {
		if p := unsupportedDialect("conn", d); p != nil {
			t.Errorf("%s: %+v", d, p)
		}
	}
	for _, d := range []string{"jsonfiles", "", "ANSI SQL", strings.Repeat("x", 500)} {
		p := unsupportedDialect("acme", d)
		if p == nil {
			t.Fatalf("%q accepted", d)
		}
		if p.Field != "data_source_id" || !strings.Contains(p.Message, `connector "acme"`) ||
			!strings.Contains(p.Message, "sdk.ModelDialects") || len(p.Message) > 400 {
			t.Errorf("%q: %+v", d, p)
		}
	}
	if p := unsupportedDialect("acme", ""); !strings.Contains(p.Message, "declares no SQL dialect") {
		t.Errorf("empty dialect: %s", p.Message)
	}
}

// What the SDK tells connector authors models compile to is what they do.
func TestSDKModelDialectsMatchTheCompiler(t *testing.T) {
	if !slices.Equal(sdk.ModelDialects, models.Dialects) {
		t.Errorf("sdk.ModelDialects %v, models.Dialects %v", sdk.ModelDialects, models.Dialects)
	}
	for _, d := range sdk.ModelDialects {
		if got, ok := modelDialect(d); !ok || got != d {
			t.Errorf("modelDialect(%q) = %q, %v", d, got, ok)
		}
	}
}
