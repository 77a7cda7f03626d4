package identity

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/role"
	"github.com/datapulse/datapulse/ent/userrole"
	"github.com/datapulse/datapulse/policy"
)

// Role is a named set of permissions.
type Role struct {
	ID          uuid.UUID `json:"id"`
	Name        string    `json:"name"`
	Description *string   `json:"description"`
	Permissions []string  `json:"permissions"`
	CreatedAt   time.Time `json:"created_at"`
}

func toRole(r *ent.Role) Role {
	perms := r.Permissions
	if perms == nil {
		perms = []string{}
	}
	return Role{ID: r.ID, Name: r.Name, Description: r.Description, Permissions: perms, CreatedAt: r.CreatedAt}
}

// RoleInput creates or changes a role; nil fields stay as they are on update.
type RoleInput struct {
	Name        *string
	Description *string
	Permissions *[]string
}

var roleName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,49}$`)

func checkRoleName(n *string) (string, error) {
	if n == nil {
		return "", errs.Invalid("name", "name is required")
	}
	v := strings.TrimSpace(*n)
	if !roleName.MatchString(v) {
		return "", errs.Invalid("name", "name must be 1-50 lower-case letters, digits, - or _, starting with a letter")
	}
	return v, nil
}

func checkPermissions(ps []string) ([]string, error) {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if !policy.Valid(p) {
			return nil, errs.Invalid("permissions", fmt.Sprintf("unknown permission %q", truncate(p, 64)))
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

// CreateRole (admins only).
func (s *Service) CreateRole(ctx context.Context, in RoleInput) (Role, error) {
	if _, err := requireAdmin(ctx); err != nil {
		return Role{}, err
	}
	name, err := checkRoleName(in.Name)
	if err != nil {
		return Role{}, err
	}
	if err := checkText("description", in.Description, 10_000); err != nil {
		return Role{}, err
	}
	perms := []string{}
	if in.Permissions != nil {
		if perms, err = checkPermissions(*in.Permissions); err != nil {
			return Role{}, err
		}
	}
	r, err := s.db.Role.Create().SetName(name).SetNillableDescription(in.Description).SetPermissions(perms).Save(ctx)
	if ent.IsConstraintError(err) {
		return Role{}, errs.Conflict("a role with this name already exists")
	}
	if err != nil {
		return Role{}, err
	}
	s.facts.SetRole(r.Name, r.Permissions)
	return toRole(r), nil
}

// ListRoles (admins only).
func (s *Service) ListRoles(ctx context.Context, p paging.Params) (paging.Page[Role], error) {
	var page paging.Page[Role]
	if _, err := requireAdmin(ctx); err != nil {
		return page, err
	}
	p, err := p.Normalize()
	if err != nil {
		return page, err
	}
	field, desc, err := p.SortField("name", "name", "created_at")
	if err != nil {
		return page, err
	}
	return paging.Collect(ctx, p, s.db.Role.Query().Count,
		func(ctx context.Context, off, n int) ([]*ent.Role, error) {
			return s.db.Role.Query().Order(orderBy(field, desc), ent.Asc(role.FieldID)).Offset(off).Limit(n).All(ctx)
		}, toRole)
}

// GetRole (admins only).
func (s *Service) GetRole(ctx context.Context, id uuid.UUID) (Role, error) {
	if _, err := requireAdmin(ctx); err != nil {
		return Role{}, err
	}
	r, err := s.db.Role.Get(ctx, id)
	if err != nil {
		return Role{}, notFound(err, "role")
	}
	return toRole(r), nil
}

// UpdateRole (admins only).
func (s *Service) UpdateRole(ctx context.Context, id uuid.UUID, in RoleInput) (Role, error) {
	if _, err := requireAdmin(ctx); err != nil {
		return Role{}, err
	}
	old, err := s.db.Role.Get(ctx, id)
	if err != nil {
		return Role{}, notFound(err, "role")
	}
	up := s.db.Role.UpdateOne(old)
	if in.Name != nil {
		name, err := checkRoleName(in.Name)
		if err != nil {
			return Role{}, err
		}
		if name != old.Name && isProtectedRole(old.Name, s.facts.DefaultRole()) {
			return Role{}, errs.Conflict("built-in roles and the default role cannot be renamed")
		}
		up.SetName(name)
	}
	if in.Description != nil {
		if err := checkText("description", in.Description, 10_000); err != nil {
			return Role{}, err
		}
		up.SetDescription(*in.Description)
	}
	if in.Permissions != nil {
		perms, err := checkPermissions(*in.Permissions)
		if err != nil {
			return Role{}, err
		}
		up.SetPermissions(perms)
	}
	r, err := up.Save(ctx)
	if ent.IsConstraintError(err) {
		return Role{}, errs.Conflict("a role with this name already exists")
	}
	if err != nil {
		return Role{}, notFound(err, "role")
	}
	s.facts.RenameRole(old.Name, r.Name)
	s.facts.SetRole(r.Name, r.Permissions)
	return toRole(r), nil
}

// isProtectedRole: the built-in roles keep their names (code and the seed
// refer to them) and the default role must keep existing.
func isProtectedRole(name, defaultRole string) bool {
	if name == defaultRole {
		return true
	}
	for _, b := range policy.BuiltinRoles {
		if b.Name == name {
			return true
		}
	}
	return false
}

// DeleteRole (admins only); its assignments go with it.
func (s *Service) DeleteRole(ctx context.Context, id uuid.UUID) error {
	if _, err := requireAdmin(ctx); err != nil {
		return err
	}
	r, err := s.db.Role.Get(ctx, id)
	if err != nil {
		return notFound(err, "role")
	}
	if isProtectedRole(r.Name, s.facts.DefaultRole()) {
		return errs.Conflict("built-in roles and the default role cannot be deleted")
	}
	if err := notFound(s.db.Role.DeleteOneID(id).Exec(ctx), "role"); err != nil {
		return err
	}
	s.facts.RemoveRole(r.Name)
	return nil
}

// RoleAssignment is one row of user_roles.
type RoleAssignment struct {
	Role       Role       `json:"role"`
	AssignedAt time.Time  `json:"assigned_at"`
	AssignedBy *uuid.UUID `json:"assigned_by"`
}

// AssignRole gives a user a role, recording who did it (admins only).
func (s *Service) AssignRole(ctx context.Context, userID, roleID uuid.UUID) (RoleAssignment, error) {
	p, err := requireAdmin(ctx)
	if err != nil {
		return RoleAssignment{}, err
	}
	var out RoleAssignment
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		if _, err := tx.User.Get(ctx, userID); err != nil {
			return notFound(err, "user")
		}
		r, err := tx.Role.Get(ctx, roleID)
		if err != nil {
			return notFound(err, "role")
		}
		exists, err := tx.UserRole.Query().Where(userrole.UserID(userID), userrole.RoleID(roleID)).Exist(ctx)
		if err != nil {
			return err
		}
		if exists {
			return errs.Conflict("the user already has this role")
		}
		c := tx.UserRole.Create().SetUserID(userID).SetRoleID(roleID)
		if !p.System {
			c.SetAssignedBy(p.UserID)
		}
		ur, err := c.Save(ctx)
		if ent.IsConstraintError(err) {
			return errs.Conflict("the user already has this role")
		}
		if err != nil {
			return err
		}
		out = RoleAssignment{Role: toRole(r), AssignedAt: ur.AssignedAt, AssignedBy: ur.AssignedBy}
		return nil
	})
	if err == nil {
		s.facts.AddUserRole(userID, out.Role.Name)
	}
	return out, err
}

// UnassignRole takes a role away from a user (admins only).
func (s *Service) UnassignRole(ctx context.Context, userID, roleID uuid.UUID) error {
	if _, err := requireAdmin(ctx); err != nil {
		return err
	}
	r, err := s.db.Role.Get(ctx, roleID)
	if err != nil {
		return notFound(err, "role assignment")
	}
	n, err := s.db.UserRole.Delete().Where(userrole.UserID(userID), userrole.RoleID(roleID)).Exec(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return errs.NotFound("role assignment")
	}
	s.facts.RemoveUserRole(userID, r.Name)
	return nil
}

// UserRoles lists a user's roles (admins only).
func (s *Service) UserRoles(ctx context.Context, userID uuid.UUID) ([]RoleAssignment, error) {
	if _, err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if _, err := s.db.User.Get(ctx, userID); err != nil {
		return nil, notFound(err, "user")
	}
	rows, err := s.db.UserRole.Query().Where(userrole.UserID(userID)).WithRole().Order(ent.Asc(userrole.FieldAssignedAt)).All(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]RoleAssignment, len(rows))
	for i, ur := range rows {
		out[i] = RoleAssignment{Role: toRole(ur.Edges.Role), AssignedAt: ur.AssignedAt, AssignedBy: ur.AssignedBy}
	}
	return out, nil
}
