package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Config is a data source's configuration, sent by the host with every call.
type Config struct {
	// DataSourceID identifies the data source; with Version it is the key
	// for whatever the connector caches (see Instances).
	DataSourceID string
	// Version is bumped by the host on every edit of the data source.
	Version int64
	// Values is the configuration without its secret fields, decoded from
	// JSON (numbers are float64).
	Values map[string]any
	// JSON is the same configuration as raw JSON.
	JSON json.RawMessage
	// Secrets holds the fields marked "x-secret" in the schema, decrypted by
	// the host. Never log them or put them in error messages (the SDK also
	// removes them from error messages it passes on).
	Secrets map[string]string
	// RequestID is the host's request id, for logs.
	RequestID string
}

// Decode unmarshals the configuration and its secrets into v, a pointer to
// the connector's own config struct: the secret values are merged in as
// string fields of the top-level object under their names. Unknown fields
// are an error, so a configuration carrying parameters the connector does
// not know is rejected rather than ignored. Errors that point at a field are
// FieldErrors.
func (c Config) Decode(v any) error {
	merged := map[string]json.RawMessage{}
	raw := bytes.TrimSpace(c.JSON)
	if len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if err := json.Unmarshal(raw, &merged); err != nil {
			return FieldErrors{{Field: "", Message: "configuration is not a JSON object"}}
		}
	}
	for k, s := range c.Secrets {
		b, _ := json.Marshal(s)
		merged[k] = b
	}
	all, err := json.Marshal(merged)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(all))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonFieldError(err)
	}
	return nil
}

// jsonFieldError turns an encoding/json error into FieldErrors where it names
// a field.
func jsonFieldError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := ""
		if te.Field != "" {
			field = "/" + strings.ReplaceAll(te.Field, ".", "/")
		}
		return FieldErrors{{Field: field, Message: fmt.Sprintf("must be of type %s", jsonTypeName(te.Type.Kind().String()))}}
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name := strings.Trim(rest, `"`)
		return FieldErrors{{Field: "/" + name, Message: "unknown configuration field"}}
	}
	return FieldErrors{{Field: "", Message: "invalid configuration: " + strings.TrimPrefix(msg, "json: ")}}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "integer"
	case "float32", "float64":
		return "number"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	}
	return kind
}

// FieldErrors is a list of configuration problems usable as an error.
type FieldErrors []FieldError

func (fe FieldErrors) Error() string {
	parts := make([]string, len(fe))
	for i, e := range fe {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// AsFieldErrors returns err's field errors: those of a FieldErrors or
// FieldError in its chain, else one error for the whole configuration. It
// returns nil for a nil error.
func AsFieldErrors(err error) []FieldError {
	if err == nil {
		return nil
	}
	var fes FieldErrors
	if errors.As(err, &fes) {
		return fes
	}
	var fe FieldError
	if errors.As(err, &fe) {
		return []FieldError{fe}
	}
	return []FieldError{{Field: "", Message: err.Error()}}
}

// secretValues returns the secret values worth scrubbing from messages,
// longest first.
func (c Config) secretValues() []string {
	var out []string
	for _, v := range c.Secrets {
		if len(v) >= minScrubLen {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}
