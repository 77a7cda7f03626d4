package identity

import (
	"context"
	"net/mail"
	"strings"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/apitoken"
	"github.com/datapulse/datapulse/ent/department"
	"github.com/datapulse/datapulse/ent/predicate"
	"github.com/datapulse/datapulse/ent/session"
	"github.com/datapulse/datapulse/ent/user"
)

// User is an account as the API shows it: never the password hash.
type User struct {
	ID              uuid.UUID  `json:"id"`
	Email           string     `json:"email"`
	Name            *string    `json:"name"`
	Role            string     `json:"role" enum:"user,admin"`
	DepartmentID    *uuid.UUID `json:"department_id"`
	EmailVerifiedAt *time.Time `json:"email_verified_at"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

func toUser(u *ent.User) User {
	return User{
		ID: u.ID, Email: u.Email, Name: u.Name, Role: string(u.Role), DepartmentID: u.DepartmentID,
		EmailVerifiedAt: u.EmailVerifiedAt, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
}

// CreateUserInput creates an account.
type CreateUserInput struct {
	Email        string
	Password     string
	Name         *string
	Role         string // default "user"
	DepartmentID *uuid.UUID
}

// UpdateUserInput changes an account; nil fields stay as they are.
type UpdateUserInput struct {
	Email    *string
	Password *string
	Name     *string // "" clears
	Role     *string
	// DepartmentID: set ClearDepartment to remove the department.
	DepartmentID    *uuid.UUID
	ClearDepartment bool
}

// UserFilter narrows a user list.
type UserFilter struct {
	Q            string // substring of email or name
	Role         string
	DepartmentID *uuid.UUID
}

func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func checkEmail(raw string) (string, error) {
	e := normalizeEmail(raw)
	if e == "" {
		return "", errs.Invalid("email", "email is required")
	}
	if len(e) > 255 {
		return "", errs.Invalid("email", "email must be at most 255 characters")
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" || !strings.Contains(e[strings.LastIndex(e, "@")+1:], ".") {
		return "", errs.Invalid("email", "email is not a valid address")
	}
	return e, nil
}

func checkName(n *string) (*string, error) {
	if n == nil {
		return nil, nil
	}
	v := strings.TrimSpace(*n)
	if len([]rune(v)) > 100 {
		return nil, errs.Invalid("name", "name must be at most 100 characters")
	}
	if strings.ContainsAny(v, "\x00\r\n") {
		return nil, errs.Invalid("name", "name must be one line of text")
	}
	return &v, nil
}

func checkRole(r string) error {
	if r != RoleUser && r != RoleAdmin {
		return errs.Invalid("role", "role must be user or admin")
	}
	return nil
}

// createUser validates and inserts; callers authorize.
func (s *Service) createUser(ctx context.Context, db *ent.Client, in CreateUserInput) (*ent.User, error) {
	email, err := checkEmail(in.Email)
	if err != nil {
		return nil, err
	}
	if in.Role == "" {
		in.Role = RoleUser
	}
	if err := checkRole(in.Role); err != nil {
		return nil, err
	}
	if err := CheckPassword(in.Password, email); err != nil {
		return nil, err
	}
	name, err := checkName(in.Name)
	if err != nil {
		return nil, err
	}
	if in.DepartmentID != nil {
		if err := s.checkDepartment(ctx, db, *in.DepartmentID); err != nil {
			return nil, err
		}
	}
	hash, err := s.hashPassword(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	c := db.User.Create().SetEmail(email).SetPassword(hash).SetRole(user.Role(in.Role)).
		SetNillableDepartmentID(in.DepartmentID)
	if name != nil && *name != "" {
		c.SetName(*name)
	}
	u, err := c.Save(ctx)
	if ent.IsConstraintError(err) {
		return nil, errs.Conflict("a user with this email already exists")
	}
	return u, err
}

func (s *Service) checkDepartment(ctx context.Context, db *ent.Client, id uuid.UUID) error {
	ok, err := db.Department.Query().Where(department.ID(id)).Exist(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return errs.Invalid("department_id", "no department with this id")
	}
	return nil
}

// CreateUser creates an account (admins only).
func (s *Service) CreateUser(ctx context.Context, in CreateUserInput) (User, error) {
	if _, err := requireAdmin(ctx); err != nil {
		return User{}, err
	}
	u, err := s.createUser(ctx, s.db, in)
	if err != nil {
		return User{}, err
	}
	s.facts.SetUser(u.ID, u.Role == user.RoleAdmin, nil)
	s.log.InfoContext(ctx, "user created", "user_id", u.ID, "role", u.Role)
	return toUser(u), nil
}

// BootstrapAdmin creates the first admin when no user exists yet; it reports
// whether it created one. It is for start-up configuration, never HTTP.
func (s *Service) BootstrapAdmin(ctx context.Context, email, password string) (bool, error) {
	var createdID uuid.UUID
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		n, err := tx.User.Query().Count(ctx)
		if err != nil || n > 0 {
			return err
		}
		u, err := s.createUser(ctx, tx.Client(), CreateUserInput{Email: email, Password: password, Role: RoleAdmin})
		if err != nil {
			return err
		}
		createdID = u.ID
		return nil
	})
	if err != nil || createdID == uuid.Nil {
		return false, err
	}
	// Only a committed user enters the facts.
	s.facts.SetUser(createdID, true, nil)
	return true, nil
}

// ListUsers lists accounts (admins only).
func (s *Service) ListUsers(ctx context.Context, f UserFilter, p paging.Params) (paging.Page[User], error) {
	var page paging.Page[User]
	if _, err := requireAdmin(ctx); err != nil {
		return page, err
	}
	p, err := p.Normalize()
	if err != nil {
		return page, err
	}
	field, desc, err := p.SortField("created_at", "created_at", "updated_at", "email", "name", "role")
	if err != nil {
		return page, err
	}
	var preds []predicate.User
	if q := strings.TrimSpace(f.Q); q != "" {
		preds = append(preds, user.Or(user.EmailContainsFold(q), user.NameContainsFold(q)))
	}
	if f.Role != "" {
		if err := checkRole(f.Role); err != nil {
			return page, err
		}
		preds = append(preds, user.RoleEQ(user.Role(f.Role)))
	}
	if f.DepartmentID != nil {
		preds = append(preds, user.DepartmentID(*f.DepartmentID))
	}
	q := s.db.User.Query().Where(preds...)
	return paging.Collect(ctx, p, q.Clone().Count,
		func(ctx context.Context, off, n int) ([]*ent.User, error) {
			return q.Order(orderBy(field, desc), ent.Asc(user.FieldID)).Offset(off).Limit(n).All(ctx)
		}, toUser)
}

// orderBy is the ent ordering for a validated sort field.
func orderBy(field string, desc bool) func(*sql.Selector) {
	if desc {
		return ent.Desc(field)
	}
	return ent.Asc(field)
}

// GetUser returns one account (admins only).
func (s *Service) GetUser(ctx context.Context, id uuid.UUID) (User, error) {
	if _, err := requireAdmin(ctx); err != nil {
		return User{}, err
	}
	u, err := s.db.User.Get(ctx, id)
	if err != nil {
		return User{}, notFound(err, "user")
	}
	return toUser(u), nil
}

// UpdateUser changes an account (admins only). The last admin cannot be
// demoted: an instance must never lock itself out.
func (s *Service) UpdateUser(ctx context.Context, id uuid.UUID, in UpdateUserInput) (User, error) {
	if _, err := requireAdmin(ctx); err != nil {
		return User{}, err
	}
	// A new password is checked and hashed before the transaction: hashing
	// waits for the hash gate and takes tens of milliseconds, which must not
	// be spent holding SQLite's single write lock.
	var newHash string
	if in.Password != nil {
		var email string
		if in.Email != nil {
			email = normalizeEmail(*in.Email)
		} else {
			u, err := s.db.User.Get(ctx, id)
			if err != nil {
				return User{}, notFound(err, "user")
			}
			email = u.Email
		}
		if err := CheckPassword(*in.Password, email); err != nil {
			return User{}, err
		}
		var err error
		if newHash, err = s.hashPassword(ctx, *in.Password); err != nil {
			return User{}, err
		}
	}
	var out *ent.User
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		u, err := tx.User.Get(ctx, id)
		if err != nil {
			return notFound(err, "user")
		}
		up := tx.User.UpdateOne(u)
		email := u.Email
		if in.Email != nil {
			if email, err = checkEmail(*in.Email); err != nil {
				return err
			}
			if email != u.Email {
				// A new address is unverified until proven.
				up.SetEmail(email).ClearEmailVerifiedAt()
			}
		}
		if in.Name != nil {
			n, err := checkName(in.Name)
			if err != nil {
				return err
			}
			if *n == "" {
				up.ClearName()
			} else {
				up.SetName(*n)
			}
		}
		if in.Role != nil {
			if err := checkRole(*in.Role); err != nil {
				return err
			}
			if u.Role == user.RoleAdmin && *in.Role != RoleAdmin {
				if err := lastAdminGuard(ctx, tx, u.ID); err != nil {
					return err
				}
			}
			up.SetRole(user.Role(*in.Role))
		}
		switch {
		case in.ClearDepartment:
			up.ClearDepartmentID()
		case in.DepartmentID != nil:
			if err := s.checkDepartment(ctx, tx.Client(), *in.DepartmentID); err != nil {
				return err
			}
			up.SetDepartmentID(*in.DepartmentID)
		}
		if in.Password != nil {
			if err := CheckPassword(*in.Password, email); err != nil { // the final email
				return err
			}
			up.SetPassword(newHash)
			// A reset means the old credentials may be in the wrong hands: it
			// ends every session and every API token of that user.
			if err := s.revokeCredentials(ctx, tx, u.ID); err != nil {
				return err
			}
		}
		out, err = up.Save(ctx)
		if ent.IsConstraintError(err) {
			return errs.Conflict("a user with this email already exists")
		}
		return err
	})
	if err != nil {
		return User{}, err
	}
	s.facts.SetAdmin(out.ID, out.Role == user.RoleAdmin)
	return toUser(out), nil
}

// revokeCredentials ends every session of a user and deletes their API
// tokens (a token is revoked by deleting it, as RevokeAPIToken does).
func (s *Service) revokeCredentials(ctx context.Context, tx *ent.Tx, userID uuid.UUID) error {
	if _, err := tx.Session.Update().Where(session.UserID(userID), session.RevokedAtIsNil()).SetRevokedAt(s.now()).Save(ctx); err != nil {
		return err
	}
	n, err := tx.APIToken.Delete().Where(apitoken.UserID(userID)).Exec(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.InfoContext(ctx, "API tokens revoked by password reset", "user_id", userID, "tokens", n)
	}
	return nil
}

func lastAdminGuard(ctx context.Context, tx *ent.Tx, except uuid.UUID) error {
	n, err := tx.User.Query().Where(user.RoleEQ(user.RoleAdmin), user.IDNEQ(except)).Count(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return errs.Conflict("this is the last administrator; make another user admin first")
	}
	return nil
}

// DeleteUser deletes an account and, by cascade, everything it owns (admins
// only). Admins cannot delete themselves, nor the last admin.
func (s *Service) DeleteUser(ctx context.Context, id uuid.UUID) error {
	p, err := requireAdmin(ctx)
	if err != nil {
		return err
	}
	if p.UserID == id {
		return errs.Conflict("you cannot delete your own account")
	}
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		u, err := tx.User.Get(ctx, id)
		if err != nil {
			return notFound(err, "user")
		}
		if u.Role == user.RoleAdmin {
			if err := lastAdminGuard(ctx, tx, u.ID); err != nil {
				return err
			}
		}
		return tx.User.DeleteOne(u).Exec(ctx)
	})
	if err == nil {
		s.facts.RemoveUser(id)
	}
	return err
}

// Me returns the caller's account.
func (s *Service) Me(ctx context.Context) (User, error) {
	p, err := requireUser(ctx)
	if err != nil {
		return User{}, err
	}
	u, err := s.db.User.Get(ctx, p.UserID)
	if err != nil {
		return User{}, notFound(err, "user")
	}
	return toUser(u), nil
}

// UpdateMe changes what a user may change about themselves: their name.
// Role, email and verification state are an administrator's business.
func (s *Service) UpdateMe(ctx context.Context, name *string) (User, error) {
	p, err := requireUser(ctx)
	if err != nil {
		return User{}, err
	}
	up := s.db.User.UpdateOneID(p.UserID)
	if name != nil {
		n, err := checkName(name)
		if err != nil {
			return User{}, err
		}
		if *n == "" {
			up.ClearName()
		} else {
			up.SetName(*n)
		}
	}
	u, err := up.Save(ctx)
	if err != nil {
		return User{}, notFound(err, "user")
	}
	return toUser(u), nil
}

// ChangePasswordInput is a password change by the account's owner.
type ChangePasswordInput struct {
	Current, New string
	// ClientIP keys the per-address rate limit, shared with logins.
	ClientIP string
}

var errChangeNeedsSession = errs.Forbidden("changing the password needs a session from a password login, not an API token: log in and use that access token")

// ChangePassword changes the caller's password after checking the current
// one, and ends every other session. It needs a session (an access token
// from a login): a personal API token must not be a way to take over the
// account. Attempts count against the login rate limits of the account and
// of the client address, so the current password cannot be guessed here
// faster than at the login.
func (s *Service) ChangePassword(ctx context.Context, in ChangePasswordInput) error {
	p, err := requireUser(ctx)
	if err != nil {
		return err
	}
	if p.TokenID != uuid.Nil || p.SessionID == uuid.Nil {
		return errChangeNeedsSession
	}
	u, err := s.db.User.Get(ctx, p.UserID)
	if err != nil {
		return notFound(err, "user")
	}
	// The new password's policy needs no secret: checked first, it does not
	// spend the caller's attempts.
	if err := CheckPassword(in.New, u.Email); err != nil {
		return err
	}
	now := s.now()
	if ok, wait := s.client.allow(in.ClientIP, now); !ok {
		return errs.RateLimited("too many password attempts from this address; try again later", wait)
	}
	if ok, wait := s.account.allow(u.Email, now); !ok {
		return errs.RateLimited("too many password attempts for this account; try again later", wait)
	}
	ok, malformed, err := s.verifyPassword(ctx, in.Current, u.Password)
	if err != nil {
		return err
	}
	if malformed != nil || !ok {
		return errs.Invalid("current_password", "current password is wrong")
	}
	h, err := s.hashPassword(ctx, in.New)
	if err != nil {
		return err
	}
	return s.withTx(ctx, func(tx *ent.Tx) error {
		if err := tx.User.UpdateOneID(u.ID).SetPassword(h).Exec(ctx); err != nil {
			return err
		}
		_, err := tx.Session.Update().
			Where(session.UserID(u.ID), session.RevokedAtIsNil(), session.IDNEQ(p.SessionID)).
			SetRevokedAt(s.now()).Save(ctx)
		return err
	})
}

// CreateUserCLI creates an account from the command line (no HTTP caller).
func (s *Service) CreateUserCLI(ctx context.Context, in CreateUserInput) (User, error) {
	return s.CreateUser(principal.System(ctx), in)
}
