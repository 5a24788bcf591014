-- SQLite form of migrations/postgres/0001_core.sql: UUIDs and hashes are BLOBs,
-- times are RFC 3339 TEXT written by sqlx (always UTC, so they sort as text).

-- Core schema: users, tenants and memberships, sessions, personal access
-- tokens, single-use emailed tokens, the mail outbox and JWT signing keys.
-- Secrets (session, PAT, reset and verification tokens) are stored only as
-- SHA-256 hashes. All times are UTC.

CREATE TABLE users (
    id                BLOB PRIMARY KEY,
    email             TEXT NOT NULL,           -- trimmed and lower-cased by the service
    password_hash     TEXT,                    -- PHC string; NULL for social-only accounts
    name              TEXT,
    first_name        TEXT,
    last_name         TEXT,
    email_verified_at TEXT,
    is_admin          INTEGER NOT NULL DEFAULT 0,  -- global administrator
    disabled_at       TEXT,
    plan              TEXT NOT NULL DEFAULT 'free',
    plan_expires_at   TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE tenants (
    id         BLOB PRIMARY KEY,
    name       TEXT NOT NULL,
    slug       TEXT NOT NULL,
    plan       TEXT NOT NULL DEFAULT 'free',
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX tenants_slug_key ON tenants (slug);

CREATE TABLE memberships (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE sessions (
    id           BLOB PRIMARY KEY,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   BLOB NOT NULL,
    tenant_id    BLOB REFERENCES tenants (id) ON DELETE SET NULL,  -- the current tenant
    ip           TEXT,
    user_agent   TEXT,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,         -- for the idle timeout; written at most once a minute
    expires_at   TEXT NOT NULL,         -- absolute expiry
    revoked_at   TEXT
);
CREATE UNIQUE INDEX sessions_token_hash_key ON sessions (token_hash);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE personal_access_tokens (
    id           BLOB PRIMARY KEY,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id    BLOB REFERENCES tenants (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,                -- space-separated: read, write
    token_hash   BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,                  -- written at most once a minute
    revoked_at   TEXT
);
CREATE UNIQUE INDEX personal_access_tokens_token_hash_key ON personal_access_tokens (token_hash);
CREATE INDEX personal_access_tokens_user ON personal_access_tokens (user_id);

CREATE TABLE one_time_tokens (
    id         BLOB PRIMARY KEY,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('password_reset', 'email_verification')),
    token_hash BLOB NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT                     -- set once; also set when a newer token replaces it
);
CREATE UNIQUE INDEX one_time_tokens_token_hash_key ON one_time_tokens (token_hash);
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id, purpose);

-- Mail waiting for delivery. Written in the same transaction as the event
-- that causes it; a row is deleted once delivered.
CREATE TABLE mail_outbox (
    id              BLOB PRIMARY KEY,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_key BLOB NOT NULL,                -- PKCS#8
    public_key  BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    generation  INTEGER NOT NULL                -- 1 for the first key; unique, so nodes starting together keep one
);
CREATE UNIQUE INDEX signing_keys_generation_key ON signing_keys (generation);
