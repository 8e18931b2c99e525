package sqlstore

// Raw is the database under a store, for the conformance suite (ledger/ledgertest) only.
// A few of its tests must reach below the ports: damage a row to see Verify name the
// broken invariant, read a stored hash to show a secret is kept hashed, write rows an
// older version accepted. Queries take ? placeholders, rebound for the engine like every
// query of the store; they run outside the store's write serialization, so a test uses
// Raw only while it makes no store call at the same time. No service calls it: what they
// need is a port (ledger.Store).
type Raw struct {
	Reader
	// Dialect is the engine's Dialect.Name(): "sqlite" or "postgres", for the rare test
	// statement that cannot be written portably (turning a constraint off).
	Dialect string
}

// RawSQL returns the store's database for tests that reach below the ports (Raw).
func (s *Store) RawSQL() Raw { return Raw{Reader: s.write, Dialect: s.d.Name()} }
