-- Two-factor authentication: TOTP secrets (encrypted), backup codes
-- (hashed), the challenges between the password step and the second step,
-- and server-held secrets such as the TOTP encryption key.

ALTER TABLE users ADD COLUMN two_factor_enabled BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE user_totp (
    user_id     UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_enc  BYTEA NOT NULL,              -- AES-256-GCM: nonce ‖ ciphertext
    enabled_at  TIMESTAMPTZ,                 -- NULL while set up but not confirmed
    last_step   BIGINT,                      -- the last 30 s step accepted: no replays
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE backup_codes (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   BYTEA NOT NULL,              -- SHA-256 of the normalised code
    created_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX backup_codes_user ON backup_codes (user_id);

CREATE TABLE mfa_challenges (
    challenge_hash BYTEA PRIMARY KEY,        -- SHA-256 of the challenge given after the password
    user_id        UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE app_secrets (
    name       TEXT PRIMARY KEY,
    value      BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
