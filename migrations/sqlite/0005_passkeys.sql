-- SQLite form of migrations/postgres/0005_passkeys.sql.

-- Passkeys (WebAuthn credentials) and the ceremonies in progress.

CREATE TABLE passkeys (
    id            BLOB PRIMARY KEY,
    user_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    credential_id BLOB NOT NULL,            -- the authenticator's credential id
    passkey       TEXT NOT NULL,             -- webauthn-rs Passkey (public key, counter), JSON
    created_at    TEXT NOT NULL,
    last_used_at  TEXT
);
CREATE UNIQUE INDEX passkeys_credential_id_key ON passkeys (credential_id);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- One row per registration or authentication started; taken by its finish.
CREATE TABLE webauthn_ceremonies (
    id_hash    BLOB PRIMARY KEY,            -- SHA-256 of the ceremony id given to the client
    user_id    BLOB REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('register', 'login', 'second_factor')),
    state      TEXT NOT NULL,                -- webauthn-rs ceremony state, JSON
    expires_at TEXT NOT NULL
);
