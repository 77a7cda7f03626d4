package identity

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/profile"
)

// Profile is a user's personal data (1:1 with the user).
type Profile struct {
	UserID    uuid.UUID  `json:"user_id"`
	Avatar    *string    `json:"avatar"`
	Bio       *string    `json:"bio"`
	Phone     *string    `json:"phone"`
	CreatedAt *time.Time `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
}

// ProfileInput replaces a profile: absent fields become empty.
type ProfileInput struct {
	Avatar *string
	Bio    *string
	Phone  *string
}

var phonePattern = regexp.MustCompile(`^\+?[0-9 ()./-]{3,50}$`)

func checkProfile(in ProfileInput) error {
	if in.Avatar != nil && *in.Avatar != "" {
		u, err := url.Parse(*in.Avatar)
		if len(*in.Avatar) > 255 || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return errs.Invalid("avatar", "avatar must be an http(s) URL of at most 255 characters")
		}
	}
	if in.Phone != nil && *in.Phone != "" && !phonePattern.MatchString(*in.Phone) {
		return errs.Invalid("phone", "phone must be digits, spaces and + ( ) . / - (3 to 50 characters)")
	}
	return checkText("bio", in.Bio, 10_000)
}

func emptyToNil(s *string) *string {
	if s == nil || strings.TrimSpace(*s) == "" {
		return nil
	}
	return s
}

// MyProfile returns the caller's profile; one that was never written is empty.
func (s *Service) MyProfile(ctx context.Context) (Profile, error) {
	p, err := requireUser(ctx)
	if err != nil {
		return Profile{}, err
	}
	pr, err := s.db.Profile.Query().Where(profile.UserID(p.UserID)).Only(ctx)
	if ent.IsNotFound(err) {
		return Profile{UserID: p.UserID}, nil
	}
	if err != nil {
		return Profile{}, err
	}
	return toProfile(pr), nil
}

func toProfile(pr *ent.Profile) Profile {
	return Profile{UserID: pr.UserID, Avatar: pr.Avatar, Bio: pr.Bio, Phone: pr.Phone, CreatedAt: &pr.CreatedAt, UpdatedAt: &pr.UpdatedAt}
}

// PutMyProfile creates or replaces the caller's profile.
func (s *Service) PutMyProfile(ctx context.Context, in ProfileInput) (Profile, error) {
	p, err := requireUser(ctx)
	if err != nil {
		return Profile{}, err
	}
	if err := checkProfile(in); err != nil {
		return Profile{}, err
	}
	in.Avatar, in.Bio, in.Phone = emptyToNil(in.Avatar), emptyToNil(in.Bio), emptyToNil(in.Phone)
	var out *ent.Profile
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		pr, err := tx.Profile.Query().Where(profile.UserID(p.UserID)).Only(ctx)
		switch {
		case ent.IsNotFound(err):
			out, err = tx.Profile.Create().SetUserID(p.UserID).
				SetNillableAvatar(in.Avatar).SetNillableBio(in.Bio).SetNillablePhone(in.Phone).Save(ctx)
			return err
		case err != nil:
			return err
		}
		// PUT replaces: absent fields are cleared. (Clear and Set of one field
		// in one update is two assignments, which PostgreSQL rejects.)
		up := tx.Profile.UpdateOne(pr)
		if in.Avatar == nil {
			up.ClearAvatar()
		} else {
			up.SetAvatar(*in.Avatar)
		}
		if in.Bio == nil {
			up.ClearBio()
		} else {
			up.SetBio(*in.Bio)
		}
		if in.Phone == nil {
			up.ClearPhone()
		} else {
			up.SetPhone(*in.Phone)
		}
		out, err = up.Save(ctx)
		return err
	})
	if err != nil {
		return Profile{}, err
	}
	return toProfile(out), nil
}
