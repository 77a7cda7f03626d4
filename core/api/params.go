package api

import (
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/paging"
)

// What every resource's routes share: path ids and list parameters.

// parseID reads a path id; a malformed one is as unknown as a missing one.
func parseID(s, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, errs.NotFound(what)
	}
	return id, nil
}

// withDashboardID parses a dashboard id from the path and calls fn with it.
func withDashboardID(raw string, fn func(uuid.UUID) error) error {
	id, err := parseID(raw, "dashboard")
	if err != nil {
		return err
	}
	return fn(id)
}

type idInput struct {
	ID string `path:"id" maxLength:"64"`
}

// ListParams are the query parameters every list shares (exported: huma
// only reads parameters of exported embedded structs).
type ListParams struct {
	Page    int    `query:"page" minimum:"1" doc:"page number, from 1"`
	PerPage int    `query:"per_page" minimum:"1" maximum:"500" doc:"items per page (default 30, max 500)"`
	Sort    string `query:"sort" maxLength:"64" doc:"field to sort by; prefix - for descending, e.g. -created_at"`
}

func (l ListParams) paging() paging.Params {
	return paging.Params{Page: l.Page, PerPage: l.PerPage, Sort: l.Sort}
}
