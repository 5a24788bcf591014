-- Several nodes on one database: outbox claims with a lease, periodic jobs
-- that run on one node per turn, shared per-IP rate-limit windows, and the
-- notifications that keep every node's caches honest.

-- A node claims a message before sending it; if it dies mid-send, the
-- claim runs out and another node sends the message.
ALTER TABLE mail_outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE mail_outbox ADD COLUMN claimed_until TIMESTAMPTZ;

-- One row per periodic job (session sweep, plan check, key rotation); a
-- node takes a turn by moving due_at forward, so one node runs each turn.
CREATE TABLE jobs (
    name        TEXT PRIMARY KEY,
    due_at      TIMESTAMPTZ NOT NULL,
    last_run_at TIMESTAMPTZ,
    last_node   TEXT                       -- the node that took the last turn
);

-- Per-IP request counts in fixed windows, shared by every node. UNLOGGED:
-- no WAL and no flush at commit for a counter written on every credential
-- request; after a crash the table starts empty, which costs nothing but a
-- fresh minute's budget.
CREATE UNLOGGED TABLE rate_limits (
    bucket       TEXT PRIMARY KEY,         -- e.g. credentials:192.0.2.1
    window_start BIGINT NOT NULL,          -- the window's number (minutes since the epoch)
    hits         INTEGER NOT NULL
);

-- Every node caches resolved credentials and users' tenants for a moment.
-- These triggers tell all of them, through NOTIFY tessera_changes, what a
-- committed write changed: 'u:<user id>', 'e:<email>' (invitations) or 'k'
-- (signing keys). Notifications are sent at commit and deduplicated within
-- a transaction. Being triggers, they also cover writes made by hand.
CREATE FUNCTION tessera_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r RECORD;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := OLD;
    ELSE
        r := NEW;
    END IF;
    IF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('tessera_changes', 'u:' || r.id::text);
    ELSIF TG_TABLE_NAME IN ('sessions', 'personal_access_tokens', 'memberships') THEN
        PERFORM pg_notify('tessera_changes', 'u:' || r.user_id::text);
        IF TG_OP = 'UPDATE' AND OLD.user_id IS DISTINCT FROM NEW.user_id THEN
            PERFORM pg_notify('tessera_changes', 'u:' || OLD.user_id::text);
        END IF;
    ELSIF TG_TABLE_NAME = 'tenants' THEN
        -- A renamed tenant shows in every member's `me`. (A deleted one
        -- takes its memberships with it, and those rows notify.)
        PERFORM pg_notify('tessera_changes', 'u:' || m.user_id::text)
        FROM memberships m WHERE m.tenant_id = r.id;
    ELSIF TG_TABLE_NAME = 'invites' THEN
        PERFORM pg_notify('tessera_changes', 'e:' || r.email);
    ELSIF TG_TABLE_NAME = 'signing_keys' THEN
        PERFORM pg_notify('tessera_changes', 'k');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_notify AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION tessera_notify_change();
-- Not on last_seen_at or last_used_at: those change at most once a minute
-- per credential and change nothing a cache holds.
CREATE TRIGGER sessions_notify AFTER UPDATE OF revoked_at, expires_at, tenant_id, user_id OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION tessera_notify_change();
CREATE TRIGGER personal_access_tokens_notify
    AFTER UPDATE OF revoked_at, expires_at, scopes, tenant_id, user_id OR DELETE ON personal_access_tokens
    FOR EACH ROW EXECUTE FUNCTION tessera_notify_change();
CREATE TRIGGER memberships_notify AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION tessera_notify_change();
CREATE TRIGGER tenants_notify AFTER UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION tessera_notify_change();
CREATE TRIGGER invites_notify AFTER INSERT OR UPDATE OR DELETE ON invites
    FOR EACH ROW EXECUTE FUNCTION tessera_notify_change();
CREATE TRIGGER signing_keys_notify AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH ROW EXECUTE FUNCTION tessera_notify_change();
