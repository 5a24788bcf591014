//! The store's errors: a small set the services act on, classified from
//! sqlx's (a database out of reach is `Unavailable`, a `503`; a unique rule
//! is `Conflict` naming which).

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was hit; names what (e.g. `email`).
    #[error("conflict on {0}")]
    Conflict(&'static str),
    /// The database is out of reach or not taking work right now (down,
    /// restarting, out of connections, locked by another process): the
    /// same request may well succeed in a moment, so it is a `503`, not a
    /// `500` (see [`is_unavailable`]).
    #[error("database unavailable: {0}")]
    Unavailable(anyhow::Error),
    #[error(transparent)]
    Other(anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The unique constraints of the migrations and the conflict each means:
/// (PostgreSQL's constraint name, SQLite's column list, the conflict).
/// SQLite names the columns of the index it hit, not the index.
const UNIQUE_CONSTRAINTS: &[(&str, &str, &str)] = &[
    ("users_email_key", "users.email", "email"),
    ("tenants_slug_key", "tenants.slug", "slug"),
    (
        "user_identities_issuer_subject_key",
        "user_identities.issuer, user_identities.subject",
        "identity",
    ),
    (
        "user_identities_user_provider_key",
        "user_identities.user_id, user_identities.provider",
        "provider",
    ),
];

/// What a unique violation means, from the constraint it names.
fn unique_conflict(db: &dyn sqlx::error::DatabaseError) -> &'static str {
    let sqlite_columns = db.message().strip_prefix("UNIQUE constraint failed: ");
    UNIQUE_CONSTRAINTS
        .iter()
        .find(|(name, columns, _)| {
            db.constraint() == Some(*name) || sqlite_columns == Some(*columns)
        })
        .map_or("unique", |(_, _, conflict)| conflict)
}

/// Turns a sqlx error into the store's own small error, so `?` does it.
impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> StoreError {
        if is_unavailable(&err) {
            // A connection that failed (not a wait that ran out, which under
            // load would make every idle connection ping).
            if !matches!(err, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) {
                broken::seen();
            }
            return StoreError::Unavailable(err.into());
        }
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) => match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => {
                    StoreError::Conflict(unique_conflict(db.as_ref()))
                }
                sqlx::error::ErrorKind::ForeignKeyViolation => StoreError::NotFound,
                _ => StoreError::Other(err.into()),
            },
            _ => StoreError::Other(err.into()),
        }
    }
}

pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        // No connection within the timeout (server down, or every
        // connection busy), the pool shutting down, a socket or TLS
        // failure (the server restarted or the network dropped), the
        // SQLite worker thread gone.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                postgres_unavailable(pg.code())
            } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                db.code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .is_some_and(sqlite_unavailable)
            } else {
                false
            }
        }
        // `Protocol` means bytes that make no sense (a driver bug or not a
        // PostgreSQL server), not a lost connection (that is `Io`); the
        // rest are about queries and values.
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs that mean the server is going away, not accepting
/// connections or out of resources, not that the statement is wrong.
fn postgres_unavailable(sqlstate: &str) -> bool {
    // 08: connection exception.
    sqlstate.starts_with("08")
        // 53: insufficient resources (disk full, out of memory, too many
        // connections).
        || sqlstate.starts_with("53")
        // 58: system error (an I/O error on the server).
        || sqlstate.starts_with("58")
        // admin_shutdown, crash_shutdown, cannot_connect_now (starting up
        // or shutting down), database_dropped.
        || matches!(sqlstate, "57P01" | "57P02" | "57P03" | "57P04")
        // read_only_sql_transaction: connected to a standby, as during a
        // failover before the connection string points at the new primary.
        || sqlstate == "25006"
}

/// SQLite result codes (the primary code, the low byte of an extended one)
/// that mean the file cannot be used now, not that the statement is wrong.
fn sqlite_unavailable(code: i32) -> bool {
    const BUSY: i32 = 5; // another process holds the lock past busy_timeout
    const LOCKED: i32 = 6;
    const READONLY: i32 = 8; // the file or its file system became read-only
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    const CANTOPEN: i32 = 14;
    const PROTOCOL: i32 = 15; // a WAL lock race that outlasted its retries
    matches!(
        code & 0xff,
        BUSY | LOCKED | READONLY | IOERR | FULL | CANTOPEN | PROTOCOL
    )
}

/// When this process last saw a database connection fail. After a server
/// restart every pooled connection is dead, but a connection in steady use
/// is handed out without a ping (see `postgres.rs`): the first query to
/// fail marks the moment, and from then on connections that sat idle since
/// before it are pinged before use, so one failed request does not become
/// one per pooled connection. (Process-wide because the error is classified
/// here, away from any pool; another store's pool pinging once more costs
/// one round trip.)
pub(crate) mod broken {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    static EPOCH: OnceLock<Instant> = OnceLock::new();
    /// Milliseconds after `EPOCH`, plus one (0: never).
    static LAST: AtomicU64 = AtomicU64::new(0);

    fn now_ms() -> u64 {
        let epoch = EPOCH.get_or_init(Instant::now);
        u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn seen() {
        LAST.store(now_ms().saturating_add(1), Ordering::Relaxed);
    }

    /// Whether a connection idle for `idle_for` was put back before the
    /// last failure seen.
    pub fn since_idle(idle_for: Duration) -> bool {
        let last = LAST.load(Ordering::Relaxed);
        if last == 0 {
            return false;
        }
        let idle_ms = u64::try_from(idle_for.as_millis()).unwrap_or(u64::MAX);
        // The failure (`last - 1`) came at or after the moment the
        // connection went idle.
        now_ms().saturating_sub(idle_ms) < last
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
    use sqlx::{ConnectOptions, Connection};

    use super::*;

    fn unavailable(err: sqlx::Error) -> bool {
        matches!(StoreError::from(err), StoreError::Unavailable(_))
    }

    #[test]
    fn connection_failures_are_unavailable_and_the_rest_are_not() {
        for err in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::WorkerCrashed,
            sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into()),
            sqlx::Error::Io(std::io::ErrorKind::UnexpectedEof.into()),
            sqlx::Error::Tls("handshake".into()),
        ] {
            let shown = err.to_string();
            assert!(unavailable(err), "{shown}");
        }
        assert!(matches!(
            StoreError::from(sqlx::Error::RowNotFound),
            StoreError::NotFound
        ));
        for err in [
            sqlx::Error::Protocol("unknown message type".into()),
            sqlx::Error::ColumnNotFound("id".into()),
            sqlx::Error::Decode("bad uuid".into()),
        ] {
            let shown = err.to_string();
            assert!(
                matches!(StoreError::from(err), StoreError::Other(_)),
                "{shown}"
            );
        }
    }

    #[test]
    fn server_going_away_is_unavailable_a_bad_statement_is_not() {
        for code in [
            "08000", "08003", "08006", "08001", "57P01", "57P02", "57P03", "53300", "53100",
            "58030", "25006",
        ] {
            assert!(postgres_unavailable(code), "{code}");
        }
        for code in [
            "23505", "23503", "42601", "42P01", "40001", "22001", "57014", "XX000",
        ] {
            assert!(!postgres_unavailable(code), "{code}");
        }
        // Primary and extended codes: BUSY, BUSY_SNAPSHOT, LOCKED,
        // READONLY, IOERR_WRITE, FULL, CANTOPEN.
        for code in [5, 517, 6, 8, 778, 13, 14] {
            assert!(sqlite_unavailable(code), "{code}");
        }
        // ERROR, CONSTRAINT_UNIQUE, CORRUPT, MISMATCH.
        for code in [1, 2067, 11, 20] {
            assert!(!sqlite_unavailable(code), "{code}");
        }
    }

    /// Real errors from SQLite: another connection's write lock outlasting
    /// the busy timeout is unavailable; a broken statement or a duplicate
    /// is not.
    #[tokio::test]
    async fn sqlite_lock_held_elsewhere_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::from_str(&format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("lock.db").display()
        ))
        .unwrap()
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_millis(50));
        let mut holder = options.connect().await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .execute(&mut holder)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut holder)
            .await
            .unwrap();
        let mut other = options.connect().await.unwrap();
        let duplicate = sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut other)
            .await
            .unwrap_err();
        assert!(matches!(
            StoreError::from(duplicate),
            StoreError::Conflict(_)
        ));
        let bad = sqlx::query("SELEC 1")
            .execute(&mut other)
            .await
            .unwrap_err();
        assert!(matches!(StoreError::from(bad), StoreError::Other(_)));

        let mut tx = holder.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let busy = sqlx::query("INSERT INTO t VALUES (3)")
            .execute(&mut other)
            .await
            .unwrap_err();
        let shown = busy.to_string();
        assert!(unavailable(busy), "{shown}");
        tx.rollback().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (3)")
            .execute(&mut other)
            .await
            .unwrap();
    }

    /// Real errors from PostgreSQL (`TESSERA_TEST_DATABASE_URL` names the
    /// server): a connection the server terminates, and SQLSTATEs raised on
    /// purpose. Ignored unless asked for (`--include-ignored`).
    #[tokio::test]
    #[ignore = "needs PostgreSQL"]
    async fn postgres_errors_are_classified() {
        let url = std::env::var("TESSERA_TEST_DATABASE_URL")
            .expect("this test needs PostgreSQL: set TESSERA_TEST_DATABASE_URL");
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        for (sqlstate, expected) in [("08006", true), ("57P03", true), ("42601", false)] {
            let err = sqlx::query(&format!(
                "DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '{sqlstate}'; END $$"
            ))
            .execute(&mut conn)
            .await
            .unwrap_err();
            assert_eq!(unavailable(err), expected, "{sqlstate}");
        }
        // The server ends this connection as it does on shutdown (57P01);
        // the next query finds it closed.
        let terminated = sqlx::query("SELECT pg_terminate_backend(pg_backend_pid())")
            .execute(&mut conn)
            .await
            .unwrap_err();
        let shown = terminated.to_string();
        assert!(unavailable(terminated), "{shown}");
        let closed = sqlx::query("SELECT 1")
            .execute(&mut conn)
            .await
            .unwrap_err();
        let shown = closed.to_string();
        assert!(unavailable(closed), "{shown}");
    }

    #[test]
    fn a_failure_marks_connections_idle_since_before_it() {
        broken::seen();
        std::thread::sleep(std::time::Duration::from_millis(5));
        // Idle for a minute: put back before the failure.
        assert!(broken::since_idle(std::time::Duration::from_secs(60)));
        // Put back just now, after it.
        assert!(!broken::since_idle(std::time::Duration::ZERO));
    }
}
