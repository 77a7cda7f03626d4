package builtin_test

import (
	"testing"

	"github.com/datapulse/datapulse/plugins/builtin"
)

// Each registered constructor builds a connector that describes itself
// under its registry name.
func TestRegistry(t *testing.T) {
	for _, name := range builtin.Names() {
		d := builtin.Connectors[name]().Describe()
		if d.Name != name {
			t.Errorf("connector registered as %q describes itself as %q", name, d.Name)
		}
		if d.Version == "" || len(d.ConfigSchema) == 0 {
			t.Errorf("%s: incomplete description %+v", name, d)
		}
	}
}
