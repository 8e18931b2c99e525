-- Transaction ids come from a sequence: usage batches of different partitions of people
-- are written at once (sqlstore.Partitioner), so MAX(id)+1 is no longer one writer's alone.
-- Stop every replica before this migration: a replica still on the older code takes
-- MAX(id)+1 and would collide with the sequence.
CREATE SEQUENCE transactions_id_seq AS BIGINT;
SELECT setval('transactions_id_seq', COALESCE((SELECT MAX(id) FROM transactions), 0) + 1, false);
