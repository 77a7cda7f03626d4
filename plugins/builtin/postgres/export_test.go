package postgres

// NewAllowingWriters returns a connector that accepts a login holding write
// privileges, to show that the read-only transaction alone still stops
// writes. Never for production: such a login can lock tables.
func NewAllowingWriters() *Connector {
	c := NewConnector()
	c.allowWriters = true
	return c
}
