-- Transparency figures (rueckkanal/transparency.py): the times of a status as whole epoch seconds, its Leistung and
-- Fachverfahren as columns, so that SQL can compute step durations; and when each status reached each delivery
-- target (receipts) and the dead letters by reason (their headers only, never a payload).
ALTER TABLE status ADD COLUMN zeitpunkt_s INTEGER;
ALTER TABLE status ADD COLUMN received_s INTEGER;
ALTER TABLE status ADD COLUMN leistung TEXT;
ALTER TABLE status ADD COLUMN fachverfahren TEXT;
UPDATE status SET zeitpunkt_s = CAST(strftime('%s', json_extract(data, '$.zeitpunkt')) AS INTEGER),
    received_s = CAST(strftime('%s', received_at) AS INTEGER),
    leistung = json_extract(data, '$.leistung'),
    fachverfahren = json_extract(data, '$.fachverfahren');
CREATE INDEX status_by_milestone ON status (status, vorgang_key);
CREATE INDEX status_by_leistung ON status (fachverfahren, leistung, status);
CREATE INDEX status_by_time ON status (zeitpunkt_s);
CREATE TABLE delivery (
    nachrichten_uuid TEXT NOT NULL,
    target TEXT NOT NULL,
    delivered_s INTEGER NOT NULL, -- the earliest receipt of this status at this target
    PRIMARY KEY (nachrichten_uuid, target)
);
CREATE TABLE dead_letter (
    dlq_partition INTEGER NOT NULL,
    dlq_offset INTEGER NOT NULL,
    stage TEXT NOT NULL,
    reason TEXT NOT NULL,
    target TEXT NOT NULL,
    failed_s INTEGER NOT NULL,
    PRIMARY KEY (dlq_partition, dlq_offset)
);
CREATE INDEX dead_letter_by_time ON dead_letter (failed_s);
