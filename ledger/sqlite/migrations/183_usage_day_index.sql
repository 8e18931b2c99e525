-- usage_person_time (person, time) put each new event in a leaf of its own once the ledger
-- is large: new events are for random people, so a batch of 1,000 wrote ~1,000 index pages
-- to the WAL, and ingestion into a ledger of 10M events ran at about half the speed of an
-- empty one (issue 18). Day first, the pages new events land in are those of the last
-- day or so, whatever the history; a person's usage in a range is read one seek per UTC
-- day (sqlstore.usageDays). Reversed usage, rare and read without a range, has its own.
CREATE INDEX usage_day_person ON usage_events(occurred_at / 86400000, person_id, occurred_at);
CREATE INDEX usage_reversed ON usage_events(person_id, occurred_at) WHERE reversed = 1;
DROP INDEX usage_person_time;
