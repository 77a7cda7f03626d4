package policy

import (
	"slices"
	"sync"

	"github.com/google/uuid"
)

// Facts is the indexed, in-memory state decisions read: who is an instance
// admin, which roles a user holds and what they grant, who owns which object
// and who it is shared with. Services update it right after committing a
// change, so the next request sees it; Load rebuilds it from the database.
type Facts struct {
	mu          sync.RWMutex
	defaultRole string
	admins      map[uuid.UUID]bool
	users       map[uuid.UUID]bool         // every known user
	userRoles   map[uuid.UUID][]string     // explicit user_roles, by role name
	roles       map[string]map[Action]bool // role name → granted actions
	owners      map[objKey]uuid.UUID       // (kind, object) → owner, for every owned kind
	counts      map[string]int             // kind → objects in owners
	shares      map[shareKey]Level         // (dashboard, user) → level
	sharedWith  map[uuid.UUID][]uuid.UUID  // dashboard → users it is shared with (for removal)

	publish func(Change) // tells other processes; nil when alone
}

// Change names a part of the facts that changed, so other processes sharing
// the database can re-read it (see Reload).
type Change struct {
	Kind string    `json:"k"` // ChangeUser, ChangeRoles, ChangeDashboard or ChangeOwner
	ID   uuid.UUID `json:"id,omitempty"`
	// Obj is the object kind of a ChangeOwner (KindQuery, KindModel, …).
	Obj string `json:"o,omitempty"`
}

// Kinds of Change.
const (
	ChangeUser  = "user"
	ChangeRoles = "roles"
	// ChangeDashboard: a dashboard's owner or shares.
	ChangeDashboard = "dashboard"
	// ChangeOwner: the owner of one object of another kind (Obj).
	ChangeOwner = "owner"
)

// changeOf names the change of one object's facts.
func changeOf(kind string, id uuid.UUID) Change {
	if kind == KindDashboard {
		return Change{Kind: ChangeDashboard, ID: id}
	}
	return Change{Kind: ChangeOwner, Obj: kind, ID: id}
}

// OnChange sets fn to be called after every change made through the
// exported mutators (not for changes read back by Reload). fn must not block.
func (f *Facts) OnChange(fn func(Change)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.publish = fn
}

func (f *Facts) emit(c Change) {
	f.mu.RLock()
	fn := f.publish
	f.mu.RUnlock()
	if fn != nil {
		fn(c)
	}
}

type shareKey struct{ obj, user uuid.UUID }

// objKey names one owned object.
type objKey struct {
	kind string
	id   uuid.UUID
}

// NewFacts returns empty facts; users without user_roles get defaultRole.
func NewFacts(defaultRole string) *Facts {
	return &Facts{
		defaultRole: defaultRole,
		admins:      map[uuid.UUID]bool{},
		users:       map[uuid.UUID]bool{},
		userRoles:   map[uuid.UUID][]string{},
		roles:       map[string]map[Action]bool{},
		owners:      map[objKey]uuid.UUID{},
		counts:      map[string]int{},
		shares:      map[shareKey]Level{},
		sharedWith:  map[uuid.UUID][]uuid.UUID{},
	}
}

// DefaultRole is the role of users without user_roles rows.
func (f *Facts) DefaultRole() string { return f.defaultRole }

// Dashboards is how many dashboards exist.
func (f *Facts) Dashboards() int { return f.Count(KindDashboard) }

// Count is how many objects of a kind have owners.
func (f *Facts) Count(kind string) int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.counts[kind]
}

// IsAdmin reports users.role = admin.
func (f *Facts) IsAdmin(user uuid.UUID) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.admins[user]
}

// RolesOf returns the role names a user holds.
func (f *Facts) RolesOf(user uuid.UUID) []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Clone(f.rolesOfLocked(user))
}

func (f *Facts) rolesOfLocked(user uuid.UUID) []string {
	if !f.users[user] {
		return nil // unknown (e.g. deleted) users hold nothing
	}
	if rs, ok := f.userRoles[user]; ok && len(rs) > 0 {
		return rs
	}
	return []string{f.defaultRole}
}

// RoleAllows reports whether any role of the user grants act.
func (f *Facts) RoleAllows(user uuid.UUID, act Action) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, r := range f.rolesOfLocked(user) {
		if f.roles[r][act] {
			return true
		}
	}
	return false
}

// IsOwner reports whether user owns the object of kind.
func (f *Facts) IsOwner(kind string, obj, user uuid.UUID) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	o, ok := f.owners[objKey{kind, obj}]
	return ok && o == user
}

// Owner returns the owner of an object of kind, if it is known.
func (f *Facts) Owner(kind string, obj uuid.UUID) (uuid.UUID, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	o, ok := f.owners[objKey{kind, obj}]
	return o, ok
}

// Exists reports whether an object of kind is known (has an owner).
func (f *Facts) Exists(kind string, obj uuid.UUID) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, ok := f.owners[objKey{kind, obj}]
	return ok
}

// ShareLevel returns the level the object is shared with user at.
func (f *Facts) ShareLevel(kind string, obj, user uuid.UUID) Level {
	if kind != KindDashboard {
		return LevelNone
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if _, exists := f.owners[objKey{kind, obj}]; !exists {
		return LevelNone
	}
	return f.shares[shareKey{obj, user}]
}

// SetUser records a user's admin flag and explicit roles (nil: default role).
func (f *Facts) SetUser(user uuid.UUID, admin bool, roles []string) {
	defer f.emit(Change{Kind: ChangeUser, ID: user})
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setAdminLocked(user, admin)
	if len(roles) == 0 {
		delete(f.userRoles, user)
	} else {
		f.userRoles[user] = append([]string(nil), roles...)
	}
}

// RemoveUser forgets a user and, as the database cascade does, every object
// they own (of every kind) and their shares.
func (f *Facts) RemoveUser(user uuid.UUID) {
	defer f.emit(Change{Kind: ChangeUser, ID: user})
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removeUserLocked(user)
}

func (f *Facts) removeUserLocked(user uuid.UUID) {
	delete(f.users, user)
	delete(f.admins, user)
	delete(f.userRoles, user)
	for k, o := range f.owners {
		if o == user {
			f.forgetLocked(k)
		}
	}
	for k := range f.shares {
		if k.user == user {
			delete(f.shares, k)
			f.sharedWith[k.obj] = slices.DeleteFunc(f.sharedWith[k.obj], func(u uuid.UUID) bool { return u == user })
		}
	}
}

// SetRole records a role's permissions (replacing them).
func (f *Facts) SetRole(name string, perms []string) {
	defer f.emit(Change{Kind: ChangeRoles})
	set := make(map[Action]bool, len(perms))
	for _, p := range perms {
		set[Action(p)] = true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.roles[name] = set
}

// RenameRole moves a role and its holders to a new name.
func (f *Facts) RenameRole(old, name string) {
	defer f.emit(Change{Kind: ChangeRoles})
	f.mu.Lock()
	defer f.mu.Unlock()
	if old == name {
		return
	}
	f.roles[name] = f.roles[old]
	delete(f.roles, old)
	for u, rs := range f.userRoles {
		if slices.Contains(rs, old) {
			// A new slice: one handed out earlier must not change under its holder.
			renamed := slices.Clone(rs)
			for i, r := range renamed {
				if r == old {
					renamed[i] = name
				}
			}
			f.userRoles[u] = renamed
		}
	}
}

// RemoveRole forgets a role and every assignment of it.
func (f *Facts) RemoveRole(name string) {
	defer f.emit(Change{Kind: ChangeRoles})
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.roles, name)
	for u, rs := range f.userRoles {
		if !slices.Contains(rs, name) {
			continue
		}
		kept := make([]string, 0, len(rs)-1)
		for _, r := range rs {
			if r != name {
				kept = append(kept, r)
			}
		}
		if len(kept) == 0 {
			delete(f.userRoles, u)
		} else {
			f.userRoles[u] = kept
		}
	}
}

// SetOwner records the owner of an object of any kind (after the row was
// committed); other processes learn it through OnChange.
func (f *Facts) SetOwner(kind string, obj, owner uuid.UUID) {
	defer f.emit(changeOf(kind, obj))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setOwnerLocked(objKey{kind, obj}, owner)
}

func (f *Facts) setOwnerLocked(k objKey, owner uuid.UUID) {
	if _, had := f.owners[k]; !had {
		f.counts[k.kind]++
	}
	f.owners[k] = owner
}

// Forget forgets an object of any kind (after its row was deleted) and, for
// a dashboard, its shares.
func (f *Facts) Forget(kind string, obj uuid.UUID) {
	defer f.emit(changeOf(kind, obj))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgetLocked(objKey{kind, obj})
}

func (f *Facts) forgetLocked(k objKey) {
	if _, had := f.owners[k]; had {
		f.counts[k.kind]--
		delete(f.owners, k)
	}
	if k.kind != KindDashboard {
		return
	}
	for _, u := range f.sharedWith[k.id] {
		delete(f.shares, shareKey{k.id, u})
	}
	delete(f.sharedWith, k.id)
}

// SetShare records (or with LevelNone removes) a share.
func (f *Facts) SetShare(dashboard, user uuid.UUID, l Level) {
	defer f.emit(Change{Kind: ChangeDashboard, ID: dashboard})
	f.mu.Lock()
	defer f.mu.Unlock()
	k := shareKey{dashboard, user}
	_, had := f.shares[k]
	if l == LevelNone {
		delete(f.shares, k)
		if had {
			us := f.sharedWith[dashboard]
			for i, u := range us {
				if u == user {
					f.sharedWith[dashboard] = append(us[:i], us[i+1:]...)
					break
				}
			}
		}
		return
	}
	f.shares[k] = l
	if !had {
		f.sharedWith[dashboard] = append(f.sharedWith[dashboard], user)
	}
}

// setAdminLocked records a known user and whether they are an instance admin.
func (f *Facts) setAdminLocked(user uuid.UUID, admin bool) {
	f.users[user] = true
	if admin {
		f.admins[user] = true
	} else {
		delete(f.admins, user)
	}
}

// SetAdmin records users.role for a known user.
func (f *Facts) SetAdmin(user uuid.UUID, admin bool) {
	defer f.emit(Change{Kind: ChangeUser, ID: user})
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setAdminLocked(user, admin)
}

// AddUserRole records a user_roles row.
func (f *Facts) AddUserRole(user uuid.UUID, role string) {
	defer f.emit(Change{Kind: ChangeUser, ID: user})
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.userRoles[user] {
		if r == role {
			return
		}
	}
	f.userRoles[user] = append(f.userRoles[user], role)
}

// RemoveUserRole forgets a user_roles row; with none left the user falls
// back to the default role.
func (f *Facts) RemoveUserRole(user uuid.UUID, role string) {
	defer f.emit(Change{Kind: ChangeUser, ID: user})
	f.mu.Lock()
	defer f.mu.Unlock()
	rs := f.userRoles[user]
	kept := make([]string, 0, len(rs))
	for _, r := range rs {
		if r != role {
			kept = append(kept, r)
		}
	}
	if len(kept) == 0 {
		delete(f.userRoles, user)
	} else {
		f.userRoles[user] = kept
	}
}
