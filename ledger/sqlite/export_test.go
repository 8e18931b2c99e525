package sqlite

import "database/sql"

// For the external benchmarks of this package: the 10M-event fixture and the writer's own
// connection, which the raw baseline writes through (same pragmas, same checkpoints).
var BalanceFixture = balanceFixture

func (db *DB) Writer() *sql.DB { return db.write }
