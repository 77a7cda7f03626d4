package identity_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/paging"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store/storetest"
)

var fast = identity.Argon2Params{MemoryKiB: 1024, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

func newService(t *testing.T, tg storetest.Target) *identity.Service {
	t.Helper()
	st := storetest.Migrated(t, tg)
	s, err := identity.New(st.Client, identity.Options{SigningKey: []byte("0123456789abcdef0123456789abcdef"), Argon2: fast})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestServicesAuthorize proves the rules hold for Go callers, not only HTTP.
func TestServicesAuthorize(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		s := newService(t, tg)
		ctx := context.Background()
		if _, err := s.CreateUser(ctx, identity.CreateUserInput{Email: "x@example.com", Password: "long enough pw 1"}); !errors.Is(err, errs.ErrUnauthenticated) {
			t.Fatalf("anonymous CreateUser: %v", err)
		}
		sys := principal.System(ctx)
		u, err := s.CreateUser(sys, identity.CreateUserInput{Email: "x@example.com", Password: "long enough pw 1"})
		if err != nil {
			t.Fatal(err)
		}
		asUser := principal.With(ctx, &principal.Principal{UserID: u.ID, Role: identity.RoleUser})
		calls := map[string]func() error{
			"CreateUser": func() error {
				_, err := s.CreateUser(asUser, identity.CreateUserInput{Email: "y@example.com", Password: "long enough pw 1"})
				return err
			},
			"ListUsers":       func() error { _, err := s.ListUsers(asUser, identity.UserFilter{}, paging.Params{}); return err },
			"GetUser":         func() error { _, err := s.GetUser(asUser, u.ID); return err },
			"DeleteUser":      func() error { return s.DeleteUser(asUser, u.ID) },
			"ListDepartments": func() error { _, err := s.ListDepartments(asUser, "", paging.Params{}); return err },
			"CreateRole":      func() error { n := "r"; _, err := s.CreateRole(asUser, identity.RoleInput{Name: &n}); return err },
			"AssignRole":      func() error { _, err := s.AssignRole(asUser, u.ID, u.ID); return err },
			"UpdateUser (own)": func() error {
				r := "admin"
				_, err := s.UpdateUser(asUser, u.ID, identity.UpdateUserInput{Role: &r})
				return err
			},
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, errs.ErrForbidden) {
				t.Errorf("%s as a plain user: %v, want forbidden", name, err)
			}
		}
		me, err := s.Me(asUser)
		if err != nil || me.Role != identity.RoleUser {
			t.Fatalf("Me: %+v %v", me, err)
		}
	})
}

func TestBootstrapAdminOnlyOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, tg storetest.Target) {
		s := newService(t, tg)
		ctx := context.Background()
		var wg sync.WaitGroup
		created := make(chan bool, 4)
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.BootstrapAdmin(ctx, "root@example.com", "bootstrap pass 1")
				if err != nil && !errors.Is(err, errs.ErrConflict) {
					t.Error(err)
				}
				created <- ok
			}()
		}
		wg.Wait()
		close(created)
		n := 0
		for ok := range created {
			if ok {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d bootstraps created an admin, want 1", n)
		}
		if ok, err := s.BootstrapAdmin(ctx, "other@example.com", "bootstrap pass 1"); ok || err != nil {
			t.Fatalf("bootstrap with users present: %v %v", ok, err)
		}
		page, err := s.ListUsers(principal.System(ctx), identity.UserFilter{}, paging.Params{})
		if err != nil || page.Total != 1 || page.Items[0].Role != identity.RoleAdmin {
			t.Fatalf("users after bootstrap: %+v %v", page, err)
		}
	})
}
