-- status-web's tables (PostgreSQL).
CREATE TABLE vorgang (
    vorgang_key TEXT PRIMARY KEY,
    last_sequence INTEGER NOT NULL,
    final_at TIMESTAMPTZ, -- when the status that made the Vorgang final arrived here; NULL while it is open
    link_published_at TIMESTAMPTZ -- when a tracking link for it went to the tracking topic
);
CREATE TABLE status (
    nachrichten_uuid TEXT PRIMARY KEY, -- a redelivered message is the same row: never a second timeline entry
    vorgang_key TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    status TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX status_by_vorgang ON status (vorgang_key, sequence);
CREATE TABLE token (
    digest TEXT PRIMARY KEY, -- HMAC-SHA-256 of the token under the server's pepper; the token itself is never stored
    vorgang_key TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX token_by_vorgang ON token (vorgang_key);
