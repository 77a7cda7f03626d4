package datasources

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// FieldError is one configuration field that does not fit the connector's schema.
type FieldError struct {
	Field   string `json:"field" doc:"JSON pointer into config, e.g. /port"`
	Message string `json:"message"`
}

// connectorSchema is a connector's compiled config JSON Schema and the names
// of its secret properties (marked "x-secret": true or "writeOnly": true).
type connectorSchema struct {
	schema  *jsonschema.Schema
	secrets []string
	raw     json.RawMessage
}

func compileSchema(raw json.RawMessage) (*connectorSchema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("connector config schema is not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("connector.json", doc); err != nil {
		return nil, err
	}
	sch, err := c.Compile("connector.json")
	if err != nil {
		return nil, fmt.Errorf("connector config schema does not compile: %w", err)
	}
	cs := &connectorSchema{schema: sch, raw: raw}
	if top, ok := doc.(map[string]any); ok {
		if props, ok := top["properties"].(map[string]any); ok {
			for name, p := range props {
				pm, _ := p.(map[string]any)
				if pm["x-secret"] == true || pm["writeOnly"] == true {
					cs.secrets = append(cs.secrets, name)
				}
			}
		}
	}
	sort.Strings(cs.secrets)
	return cs, nil
}

func (c *connectorSchema) isSecret(name string) bool { return slices.Contains(c.secrets, name) }

// validate checks a configuration (secrets included) against the schema and
// returns the leaf errors, without echoing values (they may be secrets).
func (c *connectorSchema) validate(cfg map[string]any) []FieldError {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return []FieldError{{Field: "", Message: "config is not valid JSON"}}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return []FieldError{{Field: "", Message: "config is not valid JSON"}}
	}
	err = c.schema.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []FieldError{{Message: "config is invalid"}}
	}
	var out []FieldError
	var walk func(u jsonschema.OutputUnit)
	walk = func(u jsonschema.OutputUnit) {
		if len(u.Errors) == 0 && u.Error != nil {
			out = append(out, FieldError{Field: u.InstanceLocation, Message: u.Error.String()})
		}
		for _, e := range u.Errors {
			walk(e)
		}
	}
	walk(*ve.BasicOutput())
	if len(out) == 0 {
		out = append(out, FieldError{Message: strings.TrimSpace(ve.Error())})
	}
	return out
}

// harmlessField reports whether a non-secret config field can change without
// changing where or as whom a data source connects (pool sizes, timeouts,
// labels). Every other non-secret field counts as connection identity.
func harmlessField(name string) bool {
	switch name {
	case "max_connections", "application_name":
		return true
	}
	return strings.HasSuffix(name, "_timeout") || strings.HasSuffix(name, "_timeout_ms") ||
		strings.HasPrefix(name, "timeout")
}

// identityChanges lists the non-secret, non-harmless fields of an update
// whose value differs from the stored configuration, sorted.
func identityChanges(cs *connectorSchema, stored, update map[string]any) []string {
	var changed []string
	for k, v := range update {
		if cs.isSecret(k) || harmlessField(k) {
			continue
		}
		old, had := stored[k]
		if v == nil && !had {
			continue
		}
		if had && v != nil && sameJSON(old, v) {
			continue
		}
		changed = append(changed, k)
	}
	sort.Strings(changed)
	return changed
}

func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}
