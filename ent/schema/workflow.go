package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// Workflow is an approval request: a requester asks, an approver decides.
type Workflow struct{ ent.Schema }

func (Workflow) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

func (Workflow) Annotations() []schema.Annotation {
	// Enums are plain text columns: the database enforces their values too.
	return []schema.Annotation{
		entsql.Checks(map[string]string{
			"workflows_status_check": "status IN ('pending', 'approved', 'rejected', 'cancelled')",
		}),
	}
}

func (Workflow) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("requester_id", uuid.UUID{}),
		field.UUID("approver_id", uuid.UUID{}).Optional().Nillable(),
		field.String("type").MaxRuneLen(50).SchemaType(varchar(50)).NotEmpty(),
		field.Enum("status").Values("pending", "approved", "rejected", "cancelled").Default("pending"),
		field.JSON("data", map[string]any{}).Default(map[string]any{}).SchemaType(jsonb).Annotations(entsql.Default("{}")),
	}
}

func (Workflow) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("requester", User.Type).Ref("requested_workflows").Field("requester_id").Unique().Required(),
		edge.From("approver", User.Type).Ref("approved_workflows").Field("approver_id").Unique(),
	}
}

func (Workflow) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("requester_id").StorageKey("workflows_requester_id_idx"),
		index.Fields("approver_id").StorageKey("workflows_approver_id_idx"),
		index.Fields("status").StorageKey("workflows_status_idx"),
	}
}
