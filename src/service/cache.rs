//! Short-lived caches of what nearly every request would otherwise ask the
//! database: the principal a credential resolves to, a user's tenants, and
//! the invitations pending for an address.
//!
//! An entry lives at most `cache.max_age_ms` (default one second), and is
//! dropped the moment the store reports a change to what it holds: this
//! node's own writes as they commit, other nodes' through PostgreSQL
//! notifications (see `Store::follow_changes`). While that feed is down the
//! caches stand aside, so a missed notification can never keep a revoked
//! credential alive; the age limit bounds what a notification lost in
//! flight could.
//!
//! Every change takes a number from one counter. A value is stored with the
//! number current *before* it was read from the database, and is served
//! only if nothing it depends on changed at or after that number. So a read
//! that raced a revocation is never served, whatever the order in which the
//! two finish.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use moka::sync::Cache;
use uuid::Uuid;

use super::Principal;
use crate::config::CacheConfig;
use crate::metrics::Metrics;
use crate::store::{Change, Invite, Membership};

/// What a cached value depends on, besides everything.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Subject {
    User(Uuid),
    Email(String),
}

/// A value and the change number it was read under.
#[derive(Clone)]
struct Versioned<T> {
    read_at: u64,
    value: T,
}

/// A credential's principal (session secrets left out) and what bounds it.
pub struct CachedCredential {
    pub principal: Principal,
    /// When the credential stops working by itself (JWT or PAT expiry,
    /// session absolute expiry).
    pub valid_until: Option<DateTime<Utc>>,
    /// Unix seconds of the last "last seen" / "last used" write known here,
    /// so one request a minute writes it, not every request.
    pub touched: AtomicI64,
}

/// A ticket taken before reading the database: the change number then, or
/// `None` when nothing read now may be cached.
#[derive(Clone, Copy)]
pub struct Ticket(Option<u64>);

pub struct Caches {
    credentials: Cache<[u8; 32], Versioned<Arc<CachedCredential>>>,
    memberships: Cache<Uuid, Versioned<Arc<Vec<Membership>>>>,
    invites: Cache<String, Versioned<Arc<Vec<Invite>>>>,
    /// The change number at which each user or address last changed; kept
    /// as long as the values it could outdate.
    changed_at: Cache<Subject, u64>,
    /// Values read before this number are outdated (everything changed).
    floor: AtomicU64,
    counter: AtomicU64,
    /// Whether changes are being followed (see `Change::Following`).
    following: AtomicBool,
    enabled: bool,
    metrics: Metrics,
}

impl Caches {
    pub fn new(config: &CacheConfig, metrics: Metrics) -> Caches {
        let age = Duration::from_millis(config.max_age_ms.max(1));
        let entries = config.max_entries.max(1);
        fn build<K, V>(age: Duration, entries: u64) -> Cache<K, V>
        where
            K: std::hash::Hash + Eq + Send + Sync + 'static,
            V: Clone + Send + Sync + 'static,
        {
            Cache::builder()
                .time_to_live(age)
                .max_capacity(entries)
                .build()
        }
        Caches {
            credentials: build(age, entries),
            memberships: build(age, entries),
            invites: build(age, entries),
            // Outlives every value it can outdate: those were all stored
            // before it, and live no longer than `age`.
            changed_at: build(age, entries),
            floor: AtomicU64::new(0),
            counter: AtomicU64::new(0),
            following: AtomicBool::new(false),
            enabled: config.max_age_ms > 0 && config.max_entries > 0,
            metrics,
        }
    }

    /// Applies a change reported by the store.
    pub fn on_change(&self, change: &Change) {
        let number = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        match change {
            Change::User(id) => {
                self.mark(Subject::User(*id), number);
                self.memberships.invalidate(id);
            }
            Change::Email(email) => {
                self.mark(Subject::Email(email.clone()), number);
                self.invites.invalidate(email);
            }
            Change::SigningKeys => {}
            Change::Following(on) => {
                self.floor.fetch_max(number, Ordering::SeqCst);
                self.following.store(*on, Ordering::SeqCst);
                self.credentials.invalidate_all();
                self.memberships.invalidate_all();
                self.invites.invalidate_all();
            }
        }
    }

    fn mark(&self, subject: Subject, number: u64) {
        self.changed_at
            .entry(subject)
            .and_upsert_with(|old| old.map_or(number, |o| o.into_value().max(number)));
    }

    /// Taken before a database read whose result may be cached.
    pub fn ticket(&self) -> Ticket {
        let usable = self.enabled && self.following.load(Ordering::SeqCst);
        Ticket(usable.then(|| self.counter.load(Ordering::SeqCst)))
    }

    /// Whether a value read at `read_at` that depends on `subject` is current.
    fn current(&self, read_at: u64, subject: &Subject) -> bool {
        self.following.load(Ordering::SeqCst)
            && read_at >= self.floor.load(Ordering::SeqCst)
            && self
                .changed_at
                .get(subject)
                .is_none_or(|changed| changed <= read_at)
    }

    pub fn credential(&self, key: &[u8; 32]) -> Option<Arc<CachedCredential>> {
        if !self.enabled {
            return None;
        }
        let found = self
            .credentials
            .get(key)
            .filter(|v| self.current(v.read_at, &Subject::User(v.value.principal.user.id)));
        self.metrics.cache_lookup(found.is_some());
        found.map(|v| v.value)
    }

    pub fn put_credential(&self, ticket: Ticket, key: [u8; 32], value: Arc<CachedCredential>) {
        if let Ticket(Some(read_at)) = ticket {
            self.credentials.insert(key, Versioned { read_at, value });
        }
    }

    pub fn memberships(&self, user_id: Uuid) -> Option<Arc<Vec<Membership>>> {
        if !self.enabled {
            return None;
        }
        self.memberships
            .get(&user_id)
            .filter(|v| self.current(v.read_at, &Subject::User(user_id)))
            .map(|v| v.value)
    }

    pub fn put_memberships(&self, ticket: Ticket, user_id: Uuid, value: Arc<Vec<Membership>>) {
        if let Ticket(Some(read_at)) = ticket {
            self.memberships
                .insert(user_id, Versioned { read_at, value });
        }
    }

    pub fn invites(&self, email: &str) -> Option<Arc<Vec<Invite>>> {
        if !self.enabled {
            return None;
        }
        let subject = Subject::Email(email.to_owned());
        self.invites
            .get(email)
            .filter(|v| self.current(v.read_at, &subject))
            .map(|v| v.value)
    }

    pub fn put_invites(&self, ticket: Ticket, email: &str, value: Arc<Vec<Invite>>) {
        if let Ticket(Some(read_at)) = ticket {
            self.invites
                .insert(email.to_owned(), Versioned { read_at, value });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::PrincipalKind;
    use crate::store::User;

    fn user(id: Uuid) -> User {
        let now = Utc::now();
        User {
            id,
            email: "a@example.test".into(),
            password_hash: None,
            name: None,
            first_name: None,
            last_name: None,
            email_verified_at: None,
            is_admin: false,
            disabled_at: None,
            plan: "free".into(),
            plan_expires_at: None,
            created_at: now,
            updated_at: now,
            two_factor_enabled: false,
        }
    }

    fn entry(id: Uuid) -> Arc<CachedCredential> {
        Arc::new(CachedCredential {
            principal: Principal {
                user: user(id),
                kind: PrincipalKind::Jwt,
                session: None,
                tenant_id: None,
                bound_tenant: None,
            },
            valid_until: None,
            touched: AtomicI64::new(0),
        })
    }

    fn caches() -> Caches {
        let caches = Caches::new(
            &CacheConfig {
                max_age_ms: 60_000,
                max_entries: 100,
            },
            Metrics::new(),
        );
        caches.on_change(&Change::Following(true));
        caches
    }

    #[test]
    fn a_change_to_the_user_drops_the_entry() {
        let caches = caches();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        caches.put_credential(caches.ticket(), [1; 32], entry(a));
        caches.put_credential(caches.ticket(), [2; 32], entry(b));
        assert!(caches.credential(&[1; 32]).is_some());
        caches.on_change(&Change::User(a));
        assert!(caches.credential(&[1; 32]).is_none());
        assert!(
            caches.credential(&[2; 32]).is_some(),
            "other users keep theirs"
        );
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_served() {
        let caches = caches();
        let id = Uuid::new_v4();
        // Read from the database before the change commits...
        let ticket = caches.ticket();
        caches.on_change(&Change::User(id));
        // ...and stored after the change was reported.
        caches.put_credential(ticket, [1; 32], entry(id));
        assert!(caches.credential(&[1; 32]).is_none());
        // Read after the change: served.
        caches.put_credential(caches.ticket(), [1; 32], entry(id));
        assert!(caches.credential(&[1; 32]).is_some());
    }

    #[test]
    fn nothing_is_cached_while_changes_are_not_followed() {
        let caches = caches();
        let id = Uuid::new_v4();
        caches.put_credential(caches.ticket(), [1; 32], entry(id));
        caches.on_change(&Change::Following(false));
        assert!(caches.credential(&[1; 32]).is_none());
        caches.put_credential(caches.ticket(), [1; 32], entry(id));
        assert!(caches.credential(&[1; 32]).is_none());
        // A read from before the feed came back is still outdated after.
        let stale = caches.ticket();
        caches.on_change(&Change::Following(true));
        caches.put_credential(stale, [1; 32], entry(id));
        assert!(caches.credential(&[1; 32]).is_none());
        caches.put_credential(caches.ticket(), [1; 32], entry(id));
        assert!(caches.credential(&[1; 32]).is_some());
    }

    #[test]
    fn invites_follow_their_address() {
        let caches = caches();
        caches.put_invites(caches.ticket(), "a@example.test", Arc::new(vec![]));
        assert!(caches.invites("a@example.test").is_some());
        caches.on_change(&Change::Email("a@example.test".into()));
        assert!(caches.invites("a@example.test").is_none());
    }

    #[test]
    fn a_zero_age_turns_caching_off() {
        let caches = Caches::new(
            &CacheConfig {
                max_age_ms: 0,
                max_entries: 100,
            },
            Metrics::new(),
        );
        caches.on_change(&Change::Following(true));
        caches.put_credential(caches.ticket(), [1; 32], entry(Uuid::new_v4()));
        assert!(caches.credential(&[1; 32]).is_none());
    }
}
