// Package schema holds the ent schema of DataPulse: one file per entity,
// shaped after docs/schema.md, the data model's source of truth (see its
// "Decisions" where the original design was silent or contradicted itself).
package schema

import (
	"fmt"
	"time"

	"entgo.io/ent/dialect/entsql"

	"entgo.io/ent"
	"entgo.io/ent/dialect"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/mixin"
	"github.com/google/uuid"
)

// NewID returns a UUIDv7: time-ordered, so primary-key indexes stay
// append-mostly on both SQLite and PostgreSQL.
func NewID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// Now is the clock used for every timestamp column: always UTC, so values
// compare and sort the same on both databases.
func Now() time.Time { return time.Now().UTC() }

// jsonb makes JSON columns JSONB on PostgreSQL (indexable, validated by the
// server); SQLite stores them as TEXT.
var jsonb = map[string]string{dialect.Postgres: "jsonb"}

// varchar gives a bounded string column the original design's VARCHAR(n) on PostgreSQL
// (ent would write an unbounded "character varying"); SQLite has no lengths,
// so ent's MaxRuneLen validator is what bounds it there. Both count
// characters, like the API's maxLength (PostgreSQL's varchar(n) does too).
func varchar(n int) map[string]string {
	return map[string]string{dialect.Postgres: fmt.Sprintf("varchar(%d)", n)}
}

// nowDefault is the database-side default of timestamp columns (the original design's
// NOW()), for rows written by hand or by other tools.
var nowDefault = entsql.Default("CURRENT_TIMESTAMP")

// IDMixin gives an entity a UUIDv7 primary key generated in Go.
type IDMixin struct{ mixin.Schema }

func (IDMixin) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("id", uuid.UUID{}).Default(NewID).Immutable(),
	}
}

// TimeMixin maintains created_at and updated_at.
type TimeMixin struct{ mixin.Schema }

func (TimeMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").Default(Now).Immutable().Annotations(nowDefault),
		field.Time("updated_at").Default(Now).UpdateDefault(Now).Annotations(nowDefault),
	}
}

// CreatedMixin is for the original design's tables that only record their creation.
type CreatedMixin struct{ mixin.Schema }

func (CreatedMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").Default(Now).Immutable().Annotations(nowDefault),
	}
}
