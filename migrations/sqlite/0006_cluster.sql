-- SQLite form of migrations/postgres/0006_cluster.sql. One node serves a
-- SQLite database, so there are no change notifications here; the outbox
-- claims, job turns and rate-limit windows keep the same shape.

ALTER TABLE mail_outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE mail_outbox ADD COLUMN claimed_until TEXT;

CREATE TABLE jobs (
    name        TEXT PRIMARY KEY,
    due_at      TEXT NOT NULL,
    last_run_at TEXT,
    last_node   TEXT
);

CREATE TABLE rate_limits (
    bucket       TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    hits         INTEGER NOT NULL
);
