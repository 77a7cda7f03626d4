package dashboards

import (
	"context"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/ent/schema/types"
)

// ExportVersion is the version of the portable dashboard document.
const ExportVersion = 1

// Document is a dashboard in portable form: no ids, owners or timestamps, so
// it can be imported anywhere.
type Document struct {
	Version         int                     `json:"version" minimum:"1" maximum:"1"`
	Name            string                  `json:"name" maxLength:"255"`
	Description     *string                 `json:"description,omitempty" maxLength:"10000"`
	Filters         []types.DashboardFilter `json:"filters,omitempty" maxItems:"20"`
	CacheTTLSeconds *int                    `json:"cache_ttl_seconds,omitempty" minimum:"0" maximum:"604800"`
	Widgets         []DocumentWidget        `json:"widgets" maxItems:"200"`
}

// DocumentWidget is a widget in portable form.
type DocumentWidget struct {
	Type     string         `json:"type" maxLength:"50"`
	Config   map[string]any `json:"config"`
	Position types.Position `json:"position"`
}

// Export returns a readable dashboard as a portable document.
func (s *Service) Export(ctx context.Context, id uuid.UUID) (Document, error) {
	d, err := s.Get(ctx, id)
	if err != nil {
		return Document{}, err
	}
	doc := Document{Version: ExportVersion, Name: d.Name, Description: d.Description, Filters: d.Filters, CacheTTLSeconds: d.CacheTTLSeconds, Widgets: make([]DocumentWidget, len(d.Widgets))}
	for i, w := range d.Widgets {
		doc.Widgets[i] = DocumentWidget{Type: w.Type, Config: w.Config, Position: w.Position}
	}
	return doc, nil
}

// Import creates a new dashboard, owned by the caller, from a document.
// Every widget is validated as if created one by one.
func (s *Service) Import(ctx context.Context, doc Document) (Dashboard, error) {
	if doc.Version != ExportVersion {
		return Dashboard{}, errs.Invalid("version", "unsupported document version (want 1)")
	}
	if len(doc.Widgets) > MaxWidgetsPerDashboard {
		return Dashboard{}, errs.Invalid("widgets", "a dashboard holds at most 200 widgets")
	}
	ws := make([]Widget, len(doc.Widgets))
	for i, w := range doc.Widgets {
		ws[i] = Widget{Type: w.Type, Config: w.Config, Position: w.Position}
	}
	name := doc.Name
	return s.createWith(ctx, Input{Name: &name, Description: doc.Description, Filters: &doc.Filters, CacheTTLSeconds: doc.CacheTTLSeconds}, ws)
}
