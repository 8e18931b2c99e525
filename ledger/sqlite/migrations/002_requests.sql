-- Two-step approvals: above the manager limit both the manager side and an admin approve.
ALTER TABLE requests ADD COLUMN admin_approval INTEGER REFERENCES people(id);
CREATE INDEX impacts_validation ON impacts(validated_at, person_id);
