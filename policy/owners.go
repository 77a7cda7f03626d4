package policy

import (
	"context"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/alert"
	"github.com/datapulse/datapulse/ent/dashboard"
	"github.com/datapulse/datapulse/ent/datamodel"
	"github.com/datapulse/datapulse/ent/savedquery"
)

// owned is one row's id and owner.
type owned struct{ id, owner uuid.UUID }

// ownerTable reads the owners of one kind's rows, for Load (page) and
// Reload (one). ctx must be allowed to read every row (a system caller).
type ownerTable struct {
	// page returns up to n rows from offset off, in id order.
	page func(ctx context.Context, db *ent.Client, off, n int) ([]owned, error)
	// one returns the owner of one row; found is false when it is gone.
	one func(ctx context.Context, db *ent.Client, id uuid.UUID) (owner uuid.UUID, found bool, err error)
}

// ownerTables are the owned kinds stored in tables today. A new kind with a
// table adds its entry here; the index itself needs nothing (Facts is
// generic by kind).
var ownerTables = map[string]ownerTable{
	KindDashboard: {
		page: func(ctx context.Context, db *ent.Client, off, n int) ([]owned, error) {
			rows, err := db.Dashboard.Query().Select(dashboard.FieldID, dashboard.FieldOwnerID).
				Order(ent.Asc(dashboard.FieldID)).Offset(off).Limit(n).All(ctx)
			return mapRows(rows, err, func(d *ent.Dashboard) owned { return owned{d.ID, d.OwnerID} })
		},
		one: func(ctx context.Context, db *ent.Client, id uuid.UUID) (uuid.UUID, bool, error) {
			d, err := db.Dashboard.Query().Where(dashboard.ID(id)).Select(dashboard.FieldID, dashboard.FieldOwnerID).Only(ctx)
			return oneRow(d, err, func(d *ent.Dashboard) uuid.UUID { return d.OwnerID })
		},
	},
	KindQuery: {
		page: func(ctx context.Context, db *ent.Client, off, n int) ([]owned, error) {
			rows, err := db.SavedQuery.Query().Select(savedquery.FieldID, savedquery.FieldUserID).
				Order(ent.Asc(savedquery.FieldID)).Offset(off).Limit(n).All(ctx)
			return mapRows(rows, err, func(q *ent.SavedQuery) owned { return owned{q.ID, q.UserID} })
		},
		one: func(ctx context.Context, db *ent.Client, id uuid.UUID) (uuid.UUID, bool, error) {
			q, err := db.SavedQuery.Query().Where(savedquery.ID(id)).Select(savedquery.FieldID, savedquery.FieldUserID).Only(ctx)
			return oneRow(q, err, func(q *ent.SavedQuery) uuid.UUID { return q.UserID })
		},
	},
	KindAlert: {
		page: func(ctx context.Context, db *ent.Client, off, n int) ([]owned, error) {
			rows, err := db.Alert.Query().Select(alert.FieldID, alert.FieldUserID).
				Order(ent.Asc(alert.FieldID)).Offset(off).Limit(n).All(ctx)
			return mapRows(rows, err, func(a *ent.Alert) owned { return owned{a.ID, a.UserID} })
		},
		one: func(ctx context.Context, db *ent.Client, id uuid.UUID) (uuid.UUID, bool, error) {
			a, err := db.Alert.Query().Where(alert.ID(id)).Select(alert.FieldID, alert.FieldUserID).Only(ctx)
			return oneRow(a, err, func(a *ent.Alert) uuid.UUID { return a.UserID })
		},
	},
	KindModel: {
		page: func(ctx context.Context, db *ent.Client, off, n int) ([]owned, error) {
			rows, err := db.DataModel.Query().Select(datamodel.FieldID, datamodel.FieldUserID).
				Order(ent.Asc(datamodel.FieldID)).Offset(off).Limit(n).All(ctx)
			return mapRows(rows, err, func(m *ent.DataModel) owned { return owned{m.ID, m.UserID} })
		},
		one: func(ctx context.Context, db *ent.Client, id uuid.UUID) (uuid.UUID, bool, error) {
			m, err := db.DataModel.Query().Where(datamodel.ID(id)).Select(datamodel.FieldID, datamodel.FieldUserID).Only(ctx)
			return oneRow(m, err, func(m *ent.DataModel) uuid.UUID { return m.UserID })
		},
	},
}

func mapRows[T any](rows []T, err error, f func(T) owned) ([]owned, error) {
	if err != nil {
		return nil, err
	}
	out := make([]owned, len(rows))
	for i, r := range rows {
		out[i] = f(r)
	}
	return out, nil
}

func oneRow[T any](row T, err error, owner func(T) uuid.UUID) (uuid.UUID, bool, error) {
	if ent.IsNotFound(err) {
		return uuid.Nil, false, nil
	}
	if err != nil {
		return uuid.Nil, false, err
	}
	return owner(row), true, nil
}
