package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// IdempotencyKey remembers one Idempotency-Key a user sent on a create (or
// another non-idempotent POST) and the response the first request got, so a
// retry replays it instead of writing twice. A row is a reservation
// (state in_progress, held until locked_until) while the first request runs,
// then the stored response (state completed). Rows live for 24 hours
// (expires_at) and are pruned after that; see core/api/idempotency.go.
//
// user_id is not a foreign key: a deleted user's keys simply expire.
type IdempotencyKey struct{ ent.Schema }

func (IdempotencyKey) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, CreatedMixin{}} }

func (IdempotencyKey) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("user_id", uuid.UUID{}).Immutable(),
		// The client's key: 1–255 visible ASCII characters.
		field.String("key").MaxLen(255).SchemaType(varchar(255)).NotEmpty().Immutable(),
		// SHA-256 (hex) of the method, path, query and body of the first request.
		field.String("request_hash").MaxLen(64).SchemaType(varchar(64)).Immutable(),
		// The route template (e.g. POST /api/v1/dashboards), for the messages.
		field.String("route").MaxLen(255).SchemaType(varchar(255)).Immutable(),
		field.Enum("state").Values("in_progress", "completed").Default("in_progress"),
		// While in_progress: the time after which the first request is known
		// to have ended without storing its response (process killed).
		field.Time("locked_until"),
		field.Int("status").Optional(),
		// The response headers that matter (Content-Type, Location).
		field.JSON("headers", map[string]string{}).Optional().SchemaType(jsonb),
		field.Bytes("body").Optional(),
		field.Time("expires_at"),
	}
}

func (IdempotencyKey) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id", "key").Unique().StorageKey("idempotency_keys_user_key_idx"),
		index.Fields("expires_at").StorageKey("idempotency_keys_expires_at_idx"),
	}
}
