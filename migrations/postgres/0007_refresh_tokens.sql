-- Refresh tokens for JWT-only clients of the legacy surface (seed 003).
-- Each belongs to one session and dies with it. A token is spent once:
-- presenting it marks it used and stores its successor; spent tokens stay
-- (until their session is swept) so a late reuse can be recognised and the
-- session revoked. Only SHA-256 hashes are stored.

CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
