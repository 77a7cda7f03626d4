// Package paging holds the list conventions every list endpoint shares:
// page/per_page with defaults and caps, a whitelisted sort, and the page
// envelope {items, page, per_page, total}.
package paging

import (
	"context"
	"fmt"
	"strings"

	"github.com/datapulse/datapulse/core/errs"
)

// Limits of per_page.
const (
	DefaultPerPage = 30
	MaxPerPage     = 500
	// MaxOffset bounds (page-1)*per_page: far beyond any list this server
	// holds, and far from where OFFSET arithmetic overflows.
	MaxOffset = 10_000_000
)

// Params are the list parameters a client sends.
type Params struct {
	Page    int
	PerPage int
	// Sort is a field name, "-" prefixed for descending, e.g. "-created_at".
	Sort string
}

// Page is one page of results.
type Page[T any] struct {
	Items   []T `json:"items"`
	Page    int `json:"page"`
	PerPage int `json:"per_page"`
	Total   int `json:"total"`
}

// Normalize applies defaults and rejects out-of-range values.
func (p Params) Normalize() (Params, error) {
	if p.Page == 0 {
		p.Page = 1
	}
	if p.PerPage == 0 {
		p.PerPage = DefaultPerPage
	}
	if p.Page < 1 {
		return p, errs.Invalid("page", "page must be 1 or more")
	}
	if p.PerPage < 1 || p.PerPage > MaxPerPage {
		return p, errs.Invalid("per_page", "per_page must be between 1 and 500")
	}
	if p.Page-1 > MaxOffset/p.PerPage {
		return p, errs.Invalid("page", fmt.Sprintf("page is too far: (page-1) × per_page must be at most %d", MaxOffset))
	}
	return p, nil
}

// Offset is the number of rows before this page.
func (p Params) Offset() int { return (p.Page - 1) * p.PerPage }

// SortField splits Sort into a field allowed by allowed (or def when Sort is
// empty) and its direction.
func (p Params) SortField(def string, allowed ...string) (field string, desc bool, err error) {
	s := p.Sort
	if s == "" {
		s = def
	}
	desc = strings.HasPrefix(s, "-")
	field = strings.TrimPrefix(s, "-")
	for _, a := range allowed {
		if a == field {
			return field, desc, nil
		}
	}
	return "", false, errs.Invalid("sort", "sort must be one of "+strings.Join(allowed, ", ")+" (prefix - for descending)")
}

// Collect builds a page from a count of all matches and a fetch of one
// window of them, converting each row with conv.
func Collect[E, T any](ctx context.Context, p Params,
	count func(context.Context) (int, error),
	fetch func(ctx context.Context, offset, limit int) ([]E, error),
	conv func(E) T,
) (Page[T], error) {
	total, err := count(ctx)
	if err != nil {
		return Page[T]{}, err
	}
	rows, err := fetch(ctx, p.Offset(), p.PerPage)
	if err != nil {
		return Page[T]{}, err
	}
	page := Page[T]{Items: make([]T, len(rows)), Page: p.Page, PerPage: p.PerPage, Total: total}
	for i, r := range rows {
		page.Items[i] = conv(r)
	}
	return page, nil
}
