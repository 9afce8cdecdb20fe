-- Transparency figures (rueckkanal/transparency.py): the times of a status as whole epoch seconds, its Leistung and
-- Fachverfahren as columns, so that SQL can compute step durations; and when each status reached each delivery
-- target (receipts) and the dead letters by reason (their headers only, never a payload).
ALTER TABLE status ADD COLUMN zeitpunkt_s BIGINT;
ALTER TABLE status ADD COLUMN received_s BIGINT;
ALTER TABLE status ADD COLUMN leistung TEXT;
ALTER TABLE status ADD COLUMN fachverfahren TEXT;
UPDATE status SET zeitpunkt_s = floor(extract(epoch FROM ((data::jsonb) ->> 'zeitpunkt')::timestamptz))::bigint,
    received_s = floor(extract(epoch FROM received_at))::bigint,
    leistung = (data::jsonb) ->> 'leistung',
    fachverfahren = (data::jsonb) ->> 'fachverfahren';
CREATE INDEX status_by_milestone ON status (status, vorgang_key);
CREATE INDEX status_by_leistung ON status (fachverfahren, leistung, status);
CREATE INDEX status_by_time ON status (zeitpunkt_s);
CREATE TABLE delivery (
    nachrichten_uuid TEXT NOT NULL,
    target TEXT NOT NULL,
    delivered_s BIGINT NOT NULL, -- the earliest receipt of this status at this target
    PRIMARY KEY (nachrichten_uuid, target)
);
CREATE TABLE dead_letter (
    dlq_partition INTEGER NOT NULL,
    dlq_offset BIGINT NOT NULL,
    stage TEXT NOT NULL,
    reason TEXT NOT NULL,
    target TEXT NOT NULL,
    failed_s BIGINT NOT NULL,
    PRIMARY KEY (dlq_partition, dlq_offset)
);
CREATE INDEX dead_letter_by_time ON dead_letter (failed_s);
