package dashboards

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/ent/schema/types"
)

// Grid is the dashboard grid width in columns.
const Grid = 24

// Limits on widgets.
const (
	MaxWidgetsPerDashboard = 200
	MaxConfigBytes         = 64 << 10
	maxGridY               = 10_000
	maxHeight              = 100
)

// widgetTypes maps each widget type to a decoder that validates its config.
// A config is decoded into the type's struct with unknown fields refused, so
// its shape (and nesting depth) is exactly what the type declares.
var widgetTypes = map[string]func() configValidator{
	"table":  func() configValidator { return &tableConfig{} },
	"number": func() configValidator { return &numberConfig{} },
	"line":   func() configValidator { return &seriesConfig{} },
	"bar":    func() configValidator { return &seriesConfig{} },
	"area":   func() configValidator { return &seriesConfig{} },
	"pie":    func() configValidator { return &pieConfig{} },
	"text":   func() configValidator { return &textConfig{} },
}

// WidgetTypes lists the registered widget types, sorted.
func WidgetTypes() []string {
	out := make([]string, 0, len(widgetTypes))
	for t := range widgetTypes {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

type configValidator interface{ validate() error }

// common holds fields every widget may have.
type common struct {
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
}

func (c common) validate() error {
	if len([]rune(c.Title)) > 255 {
		return fmt.Errorf("title must be at most 255 characters")
	}
	if len(c.Description) > 4096 {
		return fmt.Errorf("description must be at most 4096 bytes")
	}
	return nil
}

// source names the data a widget shows: a saved query, bound later by the
// query engine.
type source struct {
	QueryID *uuid.UUID `json:"query_id,omitempty"`
}

type tableConfig struct {
	common
	source
	Columns  []string `json:"columns,omitempty"`
	PageSize int      `json:"page_size,omitempty"`
}

func (c *tableConfig) validate() error {
	if err := c.common.validate(); err != nil {
		return err
	}
	if err := checkColumns("columns", c.Columns, 0, 200); err != nil {
		return err
	}
	if c.PageSize < 0 || c.PageSize > 1000 {
		return fmt.Errorf("page_size must be between 1 and 1000")
	}
	return nil
}

type numberConfig struct {
	common
	source
	Column   string `json:"column,omitempty"`
	Prefix   string `json:"prefix,omitempty"`
	Suffix   string `json:"suffix,omitempty"`
	Decimals *int   `json:"decimals,omitempty"`
}

func (c *numberConfig) validate() error {
	if err := c.common.validate(); err != nil {
		return err
	}
	if err := checkColumn("column", c.Column, false); err != nil {
		return err
	}
	if len(c.Prefix) > 16 || len(c.Suffix) > 16 {
		return fmt.Errorf("prefix and suffix must be at most 16 bytes")
	}
	if c.Decimals != nil && (*c.Decimals < 0 || *c.Decimals > 10) {
		return fmt.Errorf("decimals must be between 0 and 10")
	}
	return nil
}

type seriesConfig struct {
	common
	source
	X       string   `json:"x,omitempty"`
	Y       []string `json:"y,omitempty"`
	Stacked bool     `json:"stacked,omitempty"`
}

func (c *seriesConfig) validate() error {
	if err := c.common.validate(); err != nil {
		return err
	}
	if err := checkColumn("x", c.X, false); err != nil {
		return err
	}
	return checkColumns("y", c.Y, 0, 20)
}

type pieConfig struct {
	common
	source
	Label string `json:"label,omitempty"`
	Value string `json:"value,omitempty"`
	Donut bool   `json:"donut,omitempty"`
}

func (c *pieConfig) validate() error {
	if err := c.common.validate(); err != nil {
		return err
	}
	if err := checkColumn("label", c.Label, false); err != nil {
		return err
	}
	return checkColumn("value", c.Value, false)
}

type textConfig struct {
	common
	Content string `json:"content"`
	Format  string `json:"format,omitempty"`
}

func (c *textConfig) validate() error {
	if err := c.common.validate(); err != nil {
		return err
	}
	if len(c.Content) > 32<<10 {
		return fmt.Errorf("content must be at most 32 KiB")
	}
	if c.Format != "" && c.Format != "markdown" && c.Format != "plain" {
		return fmt.Errorf("format must be markdown or plain")
	}
	return nil
}

func checkColumn(field, name string, required bool) error {
	if name == "" {
		if required {
			return fmt.Errorf("%s is required", field)
		}
		return nil
	}
	if len(name) > 128 || strings.ContainsAny(name, "\x00\r\n") {
		return fmt.Errorf("%s must be a column name of at most 128 bytes", field)
	}
	return nil
}

func checkColumns(field string, names []string, minN, maxN int) error {
	if len(names) < minN || len(names) > maxN {
		return fmt.Errorf("%s must list between %d and %d columns", field, minN, maxN)
	}
	for _, n := range names {
		if err := checkColumn(field, n, true); err != nil {
			return err
		}
	}
	return nil
}

// normalizeConfig validates a widget config for its type and returns it in
// canonical form (unknown fields refused, types checked).
func normalizeConfig(typ string, cfg map[string]any) (map[string]any, error) {
	mk, ok := widgetTypes[typ]
	if !ok {
		return nil, errs.Invalid("type", "type must be one of "+strings.Join(WidgetTypes(), ", "))
	}
	if cfg == nil {
		cfg = map[string]any{}
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, errs.Invalid("config", "config is not valid JSON")
	}
	if len(raw) > MaxConfigBytes {
		return nil, errs.Invalid("config", fmt.Sprintf("config must be at most %d bytes", MaxConfigBytes))
	}
	v := mk()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, errs.Invalid("config", "config for a "+typ+" widget: "+cleanJSONError(err))
	}
	if err := v.validate(); err != nil {
		return nil, errs.Invalid("config", "config for a "+typ+" widget: "+err.Error())
	}
	out := map[string]any{}
	canon, _ := json.Marshal(v)
	if err := json.Unmarshal(canon, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func cleanJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %s has the wrong type (want %s)", te.Field, te.Type)
	}
	msg := err.Error()
	return strings.TrimPrefix(msg, "json: ")
}

// checkPosition validates a grid position.
func checkPosition(field string, p types.Position) error {
	switch {
	case p.X < 0 || p.X >= Grid:
		return errs.Invalid(field, fmt.Sprintf("%s.x must be between 0 and %d", field, Grid-1))
	case p.W < 1 || p.W > Grid:
		return errs.Invalid(field, fmt.Sprintf("%s.w must be between 1 and %d", field, Grid))
	case p.X+p.W > Grid:
		return errs.Invalid(field, fmt.Sprintf("%s.x + %s.w must not exceed %d columns", field, field, Grid))
	case p.Y < 0 || p.Y > maxGridY:
		return errs.Invalid(field, fmt.Sprintf("%s.y must be between 0 and %d", field, maxGridY))
	case p.H < 1 || p.H > maxHeight:
		return errs.Invalid(field, fmt.Sprintf("%s.h must be between 1 and %d", field, maxHeight))
	}
	return nil
}
