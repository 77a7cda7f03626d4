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

// AlertChannel is one destination an alert notifies.
type AlertChannel struct {
	// Type names the channel kind, e.g. "email" or "webhook".
	Type string `json:"type"`
	// Target is the address for that kind: an email address, a URL, …
	Target string `json:"target"`
}
