package policy

import (
	"context"
	"fmt"

	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/user"
)

// Load reads every fact from the database into a new Facts. It runs at start;
// afterwards services keep the facts current as they change the data.
func Load(ctx context.Context, db *ent.Client, defaultRole string) (*Facts, error) {
	f := NewFacts(defaultRole)
	roles, err := db.Role.Query().All(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: load roles: %w", err)
	}
	names := make(map[string]string, len(roles))
	for _, r := range roles {
		f.SetRole(r.Name, r.Permissions)
		names[r.ID.String()] = r.Name
	}
	if _, ok := f.roles[defaultRole]; !ok {
		return nil, fmt.Errorf("policy: default role %q does not exist", defaultRole)
	}
	users, err := db.User.Query().Select(user.FieldID, user.FieldRole).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: load users: %w", err)
	}
	assignments, err := db.UserRole.Query().All(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: load user roles: %w", err)
	}
	byUser := map[string][]string{}
	for _, a := range assignments {
		byUser[a.UserID.String()] = append(byUser[a.UserID.String()], names[a.RoleID.String()])
	}
	for _, u := range users {
		f.SetUser(u.ID, u.Role == user.RoleAdmin, byUser[u.ID.String()])
	}
	// Owners of every owned kind and shares, read in pages so a large installation does not hold
	// two copies in memory.
	const page = 10_000
	for kind, t := range ownerTables {
		for off := 0; ; off += page {
			rows, err := t.page(ctx, db, off, page)
			if err != nil {
				return nil, fmt.Errorf("policy: load %s owners: %w", kind, err)
			}
			for _, r := range rows {
				f.setOwnerLocked(objKey{kind, r.id}, r.owner)
			}
			if len(rows) < page {
				break
			}
		}
	}
	for off := 0; ; off += page {
		ss, err := db.DashboardShare.Query().Order(ent.Asc("dashboard_id"), ent.Asc("user_id")).Offset(off).Limit(page).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("policy: load shares: %w", err)
		}
		for _, s := range ss {
			f.SetShare(s.DashboardID, s.UserID, ParseLevel(string(s.PermissionLevel)))
		}
		if len(ss) < page {
			break
		}
	}
	return f, nil
}
