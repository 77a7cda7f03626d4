package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/models"
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

// source names the data a widget shows: a saved query with parameter
// values, or a query on a data model. FilterMap routes dashboard filters into
// it: filter name → the query's parameter, or the model's dimension.
type source struct {
	QueryID    *uuid.UUID        `json:"query_id,omitempty"`
	Parameters map[string]any    `json:"parameters,omitempty"`
	ModelID    *uuid.UUID        `json:"model_id,omitempty"`
	ModelQuery *models.Request   `json:"model_query,omitempty"`
	FilterMap  map[string]string `json:"filter_map,omitempty"`
}

func (s *source) validate() error {
	switch {
	case s.QueryID != nil && s.ModelID != nil:
		return fmt.Errorf("set either query_id or model_id, not both")
	case s.Parameters != nil && s.QueryID == nil:
		return fmt.Errorf("parameters go with query_id")
	case s.ModelQuery != nil && s.ModelID == nil:
		return fmt.Errorf("model_query goes with model_id")
	case s.ModelID != nil && s.ModelQuery == nil:
		return fmt.Errorf("model_id needs a model_query (measures, dimensions, …)")
	case s.FilterMap != nil && s.QueryID == nil && s.ModelID == nil:
		return fmt.Errorf("filter_map needs query_id or model_id")
	case len(s.Parameters) > 64 || len(s.FilterMap) > MaxFilters:
		return fmt.Errorf("at most 64 parameters and %d mapped filters", MaxFilters)
	}
	for f, target := range s.FilterMap {
		if !isName(f) || !isName(target) {
			return fmt.Errorf("filter_map maps dashboard filter names to parameter or dimension names")
		}
	}
	return nil
}

// WidgetSource is the data a widget's config names.
type WidgetSource struct {
	QueryID    *uuid.UUID
	Parameters map[string]any
	ModelID    *uuid.UUID
	ModelQuery *models.Request
	FilterMap  map[string]string
}

// HasData reports whether the widget shows data from a source.
func (w WidgetSource) HasData() bool { return w.QueryID != nil || w.ModelID != nil }

// SourceOf reads the data source part of a stored widget config.
func SourceOf(cfg map[string]any) (WidgetSource, error) {
	var s source
	raw, err := json.Marshal(cfg)
	if err != nil {
		return WidgetSource{}, err
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return WidgetSource{}, errs.Invalid("config", "widget config: "+cleanJSONError(err))
	}
	return WidgetSource(s), nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

func isName(s string) bool { return nameRE.MatchString(s) }

// FilterValue checks a dashboard filter value against its declaration: a
// scalar of its type, or a list of them when the filter allows several. A
// date may also be a relative range ("last 7 days", "this month", "today").
func FilterValue(f types.DashboardFilter, v any) (any, error) {
	if list, ok := v.([]any); ok {
		if !f.Multiple {
			return nil, fmt.Errorf("filter %s takes one value", f.Name)
		}
		if len(list) == 0 || len(list) > 1000 {
			return nil, fmt.Errorf("filter %s takes 1 to 1000 values", f.Name)
		}
		for _, x := range list {
			if _, err := FilterValue(types.DashboardFilter{Name: f.Name, Type: f.Type}, x); err != nil {
				return nil, err
			}
		}
		return v, nil
	}
	bad := fmt.Errorf("filter %s takes a %s value", f.Name, f.Type)
	switch f.Type {
	case "text":
		if s, ok := v.(string); !ok || len(s) > 10_000 {
			return nil, bad
		}
	case "number":
		switch v.(type) {
		case float64, json.Number, int, int64:
		default:
			return nil, bad
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return nil, bad
		}
	case "date", "datetime":
		s, ok := v.(string)
		if !ok {
			return nil, bad
		}
		if IsRelativeDate(s) {
			return v, nil
		}
		layouts := []string{time.DateOnly, time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05"}
		for _, l := range layouts {
			if _, err := time.Parse(l, s); err == nil {
				return v, nil
			}
		}
		return nil, fmt.Errorf("filter %s takes a date (YYYY-MM-DD), a timestamp or a relative range like \"last 7 days\"", f.Name)
	}
	return v, nil
}

// IsRelativeDate reports whether s is a relative date range the model filter
// language knows ("last 7 days", "this month", "today", "yesterday").
func IsRelativeDate(s string) bool {
	f, err := models.ParseFilter("x " + s)
	return err == nil && (f.Op == models.OpLast || f.Op == models.OpThis || f.Op == models.OpToday || f.Op == models.OpYesterday)
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
	if err := c.source.validate(); err != nil {
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
	if err := c.source.validate(); err != nil {
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
	if err := c.source.validate(); err != nil {
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
	if err := c.source.validate(); err != nil {
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

// SourceChecker verifies that a dashboard owner may read the data a widget
// names (implemented by the rendering service, which knows queries and
// models).
type SourceChecker interface {
	CheckWidgetSource(ctx context.Context, owner uuid.UUID, filters []types.DashboardFilter, src WidgetSource) error
}

// SetSourceChecker installs the widget source check; without one, widgets
// naming data are refused.
func (s *Service) SetSourceChecker(c SourceChecker) { s.sources = c }

// widgetConfig validates a widget config for a dashboard owned by owner with
// the given filters and returns it in canonical form.
func (s *Service) widgetConfig(ctx context.Context, owner uuid.UUID, filters []types.DashboardFilter, typ string, cfg map[string]any) (map[string]any, error) {
	out, err := normalizeConfig(typ, cfg)
	if err != nil {
		return nil, err
	}
	src, err := SourceOf(out)
	if err != nil {
		return nil, err
	}
	if !src.HasData() {
		return out, nil
	}
	for f := range src.FilterMap {
		if !slices.ContainsFunc(filters, func(d types.DashboardFilter) bool { return d.Name == f }) {
			return nil, errs.Invalid("config.filter_map", "the dashboard declares no filter "+f)
		}
	}
	if s.sources == nil {
		return nil, errs.Invalid("config", "widgets bound to data are not available")
	}
	if err := s.sources.CheckWidgetSource(ctx, owner, filters, src); err != nil {
		return nil, err
	}
	return out, nil
}
