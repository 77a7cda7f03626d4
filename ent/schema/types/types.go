// Package types holds the Go shapes of JSON columns whose structure is ours.
// It lives outside package schema so that schema files can import ent's
// generated packages (privacy, hooks) without an import cycle.
package types

// Position is a widget's place on the dashboard's 24-column grid.
type Position struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// QueryParameter declares one {{name}} placeholder of a saved query.
type QueryParameter struct {
	Name string `json:"name"`
	// Type is text, number, date, datetime, boolean, enum or list.
	Type     string `json:"type"`
	Required bool   `json:"required,omitempty"`
	// Default is used when a run gives no value (JSON-typed per Type).
	Default any `json:"default,omitempty"`
	// Options are the allowed values of an enum (and of list items when set).
	Options []string `json:"options,omitempty"`
	// ItemType is the type of a list's items: text, number, date or datetime.
	ItemType string `json:"item_type,omitempty"`
}

// AlertChannel is one destination an alert notifies.
type AlertChannel struct {
	// Type names the channel kind, e.g. "email" or "webhook".
	Type string `json:"type"`
	// Target is the address for that kind: an email address, a URL, …
	Target string `json:"target"`
	// Secret signs webhook bodies (HMAC-SHA256). Never returned by the API.
	Secret string `json:"secret,omitempty"`
}

// AlertSource is what an alert evaluates: a data model's measure or a saved
// query's numeric column. Exactly one of ModelID and QueryID is set.
type AlertSource struct {
	ModelID string `json:"model_id,omitempty"`
	// Measure names a measure of the model.
	Measure string `json:"measure,omitempty"`
	// Filters restrict the model query, in the model's text filter form
	// ("region = 'EU'", "created_at last 1 hours").
	Filters []string `json:"filters,omitempty"`
	QueryID string   `json:"query_id,omitempty"`
	// Column names a numeric column of the saved query's result.
	Column string `json:"column,omitempty"`
	// Parameters are the saved query's parameter values.
	Parameters map[string]any `json:"parameters,omitempty"`
}

// DashboardFilter declares one dashboard-level filter: its value is given
// when the dashboard renders and flows into every widget that maps it.
type DashboardFilter struct {
	Name  string `json:"name"`
	Label string `json:"label,omitempty"`
	// Type is text, number, date, datetime or boolean.
	Type string `json:"type"`
	// Multiple allows a list of values (widgets then filter with "in").
	Multiple bool `json:"multiple,omitempty"`
	// Default applies when a render gives no value; null means unfiltered.
	Default any `json:"default,omitempty"`
}
