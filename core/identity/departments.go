package identity

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/department"
)

// Department groups users.
type Department struct {
	ID          uuid.UUID `json:"id"`
	Name        string    `json:"name"`
	Description *string   `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func toDepartment(d *ent.Department) Department {
	return Department{ID: d.ID, Name: d.Name, Description: d.Description, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

// DepartmentInput creates or changes a department; nil fields stay as they are on update.
type DepartmentInput struct {
	Name        *string
	Description *string
}

func checkLabel(field string, v *string, max int, required bool) (string, error) {
	if v == nil {
		if required {
			return "", errs.Invalid(field, field+" is required")
		}
		return "", nil
	}
	s := strings.TrimSpace(*v)
	switch {
	case s == "" && required:
		return "", errs.Invalid(field, field+" must not be empty")
	case len([]rune(s)) > max:
		return "", errs.Invalid(field, field+" is too long")
	case strings.ContainsAny(s, "\x00\r\n"):
		return "", errs.Invalid(field, field+" must be one line of text")
	}
	return s, nil
}

func checkText(field string, v *string, max int) error {
	if v != nil && (len(*v) > max || strings.ContainsRune(*v, 0)) {
		return errs.Invalid(field, field+" is too long or contains NUL")
	}
	return nil
}

// CreateDepartment (admins only).
func (s *Service) CreateDepartment(ctx context.Context, in DepartmentInput) (Department, error) {
	if _, err := requireAdmin(ctx); err != nil {
		return Department{}, err
	}
	name, err := checkLabel("name", in.Name, 100, true)
	if err != nil {
		return Department{}, err
	}
	if err := checkText("description", in.Description, 10_000); err != nil {
		return Department{}, err
	}
	d, err := s.db.Department.Create().SetName(name).SetNillableDescription(in.Description).Save(ctx)
	if ent.IsConstraintError(err) {
		return Department{}, errs.Conflict("a department with this name already exists")
	}
	if err != nil {
		return Department{}, err
	}
	return toDepartment(d), nil
}

// ListDepartments (admins only); q filters by name.
func (s *Service) ListDepartments(ctx context.Context, q string, p paging.Params) (paging.Page[Department], error) {
	var page paging.Page[Department]
	if _, err := requireAdmin(ctx); err != nil {
		return page, err
	}
	p, err := p.Normalize()
	if err != nil {
		return page, err
	}
	field, desc, err := p.SortField("name", "name", "created_at", "updated_at")
	if err != nil {
		return page, err
	}
	query := s.db.Department.Query()
	if q = strings.TrimSpace(q); q != "" {
		query.Where(department.NameContainsFold(q))
	}
	return paging.Collect(ctx, p, query.Clone().Count,
		func(ctx context.Context, off, n int) ([]*ent.Department, error) {
			return query.Order(orderBy(field, desc), ent.Asc(department.FieldID)).Offset(off).Limit(n).All(ctx)
		}, toDepartment)
}

// GetDepartment (admins only).
func (s *Service) GetDepartment(ctx context.Context, id uuid.UUID) (Department, error) {
	if _, err := requireAdmin(ctx); err != nil {
		return Department{}, err
	}
	d, err := s.db.Department.Get(ctx, id)
	if err != nil {
		return Department{}, notFound(err, "department")
	}
	return toDepartment(d), nil
}

// UpdateDepartment (admins only).
func (s *Service) UpdateDepartment(ctx context.Context, id uuid.UUID, in DepartmentInput) (Department, error) {
	if _, err := requireAdmin(ctx); err != nil {
		return Department{}, err
	}
	up := s.db.Department.UpdateOneID(id)
	if in.Name != nil {
		name, err := checkLabel("name", in.Name, 100, true)
		if err != nil {
			return Department{}, err
		}
		up.SetName(name)
	}
	if in.Description != nil {
		if err := checkText("description", in.Description, 10_000); err != nil {
			return Department{}, err
		}
		up.SetDescription(*in.Description)
	}
	d, err := up.Save(ctx)
	if ent.IsConstraintError(err) {
		return Department{}, errs.Conflict("a department with this name already exists")
	}
	if err != nil {
		return Department{}, notFound(err, "department")
	}
	return toDepartment(d), nil
}

// DeleteDepartment (admins only); its users keep their accounts, without a department.
func (s *Service) DeleteDepartment(ctx context.Context, id uuid.UUID) error {
	if _, err := requireAdmin(ctx); err != nil {
		return err
	}
	return notFound(s.db.Department.DeleteOneID(id).Exec(ctx), "department")
}
