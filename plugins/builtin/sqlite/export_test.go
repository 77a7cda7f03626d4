package sqlite

// NewUnprotected returns a connector without the SQLite authorizer, to show
// that mode=ro and query_only hold on their own.
func NewUnprotected(forbidden ...string) *Connector {
	return NewWithOptions(Options{Forbidden: forbidden, noAuthorizer: true})
}
