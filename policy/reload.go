package policy

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/dashboardshare"
	"github.com/datapulse/datapulse/ent/user"
	"github.com/datapulse/datapulse/ent/userrole"
)

// Reload re-reads the part of the facts a Change names from the database.
// It is how a change made by another process sharing the database reaches
// this one; it does not call the OnChange function. ctx must allow reading
// every dashboard (a system caller).
func (f *Facts) Reload(ctx context.Context, db *ent.Client, c Change) error {
	switch c.Kind {
	case ChangeUser:
		return f.reloadUser(ctx, db, c.ID)
	case ChangeRoles:
		return f.reloadRoles(ctx, db)
	case ChangeDashboard:
		return f.reloadDashboard(ctx, db, c.ID)
	case ChangeOwner:
		return f.reloadOwner(ctx, db, c.Obj, c.ID)
	}
	return fmt.Errorf("policy: unknown change kind %q", c.Kind)
}

func (f *Facts) reloadUser(ctx context.Context, db *ent.Client, id uuid.UUID) error {
	u, err := db.User.Query().Where(user.ID(id)).Select(user.FieldID, user.FieldRole).Only(ctx)
	if ent.IsNotFound(err) {
		f.mu.Lock()
		f.removeUserLocked(id)
		f.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	urs, err := db.UserRole.Query().Where(userrole.UserID(id)).WithRole().All(ctx)
	if err != nil {
		return err
	}
	var names []string
	for _, ur := range urs {
		names = append(names, ur.Edges.Role.Name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setAdminLocked(id, u.Role == user.RoleAdmin)
	if len(names) == 0 {
		delete(f.userRoles, id)
	} else {
		f.userRoles[id] = names
	}
	return nil
}

// reloadRoles replaces every role and every assignment: a rename changes the
// name assignments are kept under.
func (f *Facts) reloadRoles(ctx context.Context, db *ent.Client) error {
	roles, err := db.Role.Query().All(ctx)
	if err != nil {
		return err
	}
	urs, err := db.UserRole.Query().WithRole().All(ctx)
	if err != nil {
		return err
	}
	rs := make(map[string]map[Action]bool, len(roles))
	for _, r := range roles {
		set := make(map[Action]bool, len(r.Permissions))
		for _, p := range r.Permissions {
			set[Action(p)] = true
		}
		rs[r.Name] = set
	}
	byUser := map[uuid.UUID][]string{}
	for _, ur := range urs {
		byUser[ur.UserID] = append(byUser[ur.UserID], ur.Edges.Role.Name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.roles = rs
	f.userRoles = byUser
	return nil
}

// reloadOwner re-reads the owner of one object of a kind stored in a table.
func (f *Facts) reloadOwner(ctx context.Context, db *ent.Client, kind string, id uuid.UUID) error {
	t, ok := ownerTables[kind]
	if !ok {
		return fmt.Errorf("policy: no table holds owners of kind %q", kind)
	}
	owner, found, err := t.one(ctx, db, id)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if found {
		f.setOwnerLocked(objKey{kind, id}, owner)
	} else {
		f.forgetLocked(objKey{kind, id})
	}
	return nil
}

func (f *Facts) reloadDashboard(ctx context.Context, db *ent.Client, id uuid.UUID) error {
	owner, found, err := ownerTables[KindDashboard].one(ctx, db, id)
	if err != nil {
		return err
	}
	k := objKey{KindDashboard, id}
	if !found {
		f.mu.Lock()
		f.forgetLocked(k)
		f.mu.Unlock()
		return nil
	}
	shares, err := db.DashboardShare.Query().Where(dashboardshare.DashboardID(id)).All(ctx)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgetLocked(k)
	f.setOwnerLocked(k, owner)
	for _, s := range shares {
		f.shares[shareKey{id, s.UserID}] = ParseLevel(string(s.PermissionLevel))
		f.sharedWith[id] = append(f.sharedWith[id], s.UserID)
	}
	return nil
}

// ReplaceWith takes every fact of other (a fresh Load), keeping this Facts'
// identity so enforcers holding it see the new state. Used after this process
// may have missed changes (a lost notification connection).
func (f *Facts) ReplaceWith(other *Facts) {
	other.mu.RLock()
	defer other.mu.RUnlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.admins, f.users, f.userRoles, f.roles = other.admins, other.users, other.userRoles, other.roles
	f.owners, f.counts, f.shares, f.sharedWith = other.owners, other.counts, other.shares, other.sharedWith
}
