package datasources

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
)

// SQLDialect returns the connector of a data source and the SQL dialect
// that connector declares in its description ("" when it declares none)
// (queries:run or datasources:manage). Data models check it when saved:
// they compile only to dialects core/models knows.
func (s *Service) SQLDialect(ctx context.Context, id uuid.UUID) (connector, dialect string, err error) {
	if _, err := s.requireUse(ctx); err != nil {
		return "", "", err
	}
	d, err := s.get(ctx, id)
	if err != nil {
		return "", "", err
	}
	for _, c := range s.conns.Connectors(ctx) {
		if c.Name == d.Type {
			return d.Type, c.SQLDialect, nil
		}
	}
	return d.Type, "", errs.Unavailable(fmt.Sprintf("connector %q of this data source is not installed", d.Type))
}
