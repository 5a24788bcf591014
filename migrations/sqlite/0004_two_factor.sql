-- SQLite form of migrations/postgres/0004_two_factor.sql.

-- Two-factor authentication: TOTP secrets (encrypted), backup codes
-- (hashed), the challenges between the password step and the second step,
-- and server-held secrets such as the TOTP encryption key.

ALTER TABLE users ADD COLUMN two_factor_enabled INTEGER NOT NULL DEFAULT 0;

CREATE TABLE user_totp (
    user_id     BLOB PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_enc  BLOB NOT NULL,              -- AES-256-GCM: nonce ‖ ciphertext
    enabled_at  TEXT,                 -- NULL while set up but not confirmed
    last_step   INTEGER,                      -- the last 30 s step accepted: no replays
    created_at  TEXT NOT NULL
);

CREATE TABLE backup_codes (
    id          BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   BLOB NOT NULL,              -- SHA-256 of the normalised code
    created_at  TEXT NOT NULL,
    used_at     TEXT
);
CREATE INDEX backup_codes_user ON backup_codes (user_id);

CREATE TABLE mfa_challenges (
    challenge_hash BLOB PRIMARY KEY,        -- SHA-256 of the challenge given after the password
    user_id        BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL
);

CREATE TABLE app_secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_at TEXT NOT NULL
);
