-- Invitations to tenants, and the audit log of security events.

CREATE TABLE invites (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,                 -- lower-cased
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    token_hash  BLOB NOT NULL,                -- SHA-256 of the emailed token
    invited_by  BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,          -- 7 days after creation
    accepted_at TEXT,
    revoked_at  TEXT                    -- also set when a newer invite replaces it
);
CREATE UNIQUE INDEX invites_token_hash_key ON invites (token_hash);
CREATE INDEX invites_tenant ON invites (tenant_id);
CREATE INDEX invites_email ON invites (email);

-- Append-only. Ids are kept without foreign keys so events outlive what
-- they describe.
CREATE TABLE audit_events (
    id         BLOB PRIMARY KEY,
    at         TEXT NOT NULL,
    action     TEXT NOT NULL,                  -- e.g. login.failure, member.remove
    actor_id   BLOB,                           -- who did it (NULL: anonymous or the system)
    target_id  BLOB,                           -- the user acted upon
    tenant_id  BLOB,
    ip         TEXT,
    detail     TEXT                            -- a short JSON object
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, at);
CREATE INDEX audit_events_actor ON audit_events (actor_id, at);
CREATE INDEX audit_events_target ON audit_events (target_id, at);

-- Failed password logins per email (known or not), for the lockout.
CREATE TABLE login_failures (
    email        TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start TEXT NOT NULL,        -- the first failure of the current run
    locked_until TEXT
);
