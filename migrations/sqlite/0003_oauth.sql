-- SQLite form of migrations/postgres/0003_oauth.sql: UUIDs and hashes are BLOBs,
-- times are RFC 3339 TEXT.

-- Social login: identities at OAuth/OIDC providers, and the short-lived
-- records of sign-ins in progress.

CREATE TABLE user_identities (
    id         BLOB PRIMARY KEY,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,                 -- the configured name, e.g. google
    issuer     TEXT NOT NULL,                 -- OIDC issuer, or the provider's fixed id for OAuth2
    subject    TEXT NOT NULL,                 -- the provider's stable user id
    email      TEXT,                          -- as the provider last asserted it
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX user_identities_issuer_subject_key ON user_identities (issuer, subject);
CREATE UNIQUE INDEX user_identities_user_provider_key ON user_identities (user_id, provider);

-- One row per redirect to a provider; taken (deleted) by the callback.
CREATE TABLE oauth_states (
    state_hash    BLOB PRIMARY KEY,          -- SHA-256 of the state (also in the browser's cookie)
    provider      TEXT NOT NULL,
    callback      TEXT NOT NULL,              -- the redirect_uri sent, repeated at the token exchange
    pkce_verifier TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    redirect_to   TEXT NOT NULL,              -- already checked against the allowlist
    link_user_id  BLOB REFERENCES users (id) ON DELETE CASCADE,  -- set when a signed-in user links
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX oauth_states_expires ON oauth_states (expires_at);
