//! What a committed write changed, for the caches (and, on PostgreSQL, for
//! the other nodes).

use std::sync::{Arc, RwLock};

use uuid::Uuid;

/// A committed write that changes what a credential resolves to, what a
/// user's `me` shows, or which keys sign JWTs. Caches drop what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The user's row, sessions, tokens or tenants.
    User(Uuid),
    /// Invitations addressed to this (lower-cased) email.
    Email(String),
    /// The JWT signing keys.
    SigningKeys,
    /// Whether other nodes' changes are being followed. `false`: the feed
    /// broke and changes may be missed, so caches empty and stand aside;
    /// `true`: it is back (caches empty once more and resume).
    Following(bool),
}

impl Change {
    /// The form carried by a PostgreSQL notification (see the `0006`
    /// migration's trigger): `u:<uuid>`, `e:<email>`, `k`, anything else
    /// meaning "all".
    pub fn from_payload(payload: &str) -> Change {
        match payload.split_once(':') {
            Some(("u", id)) => id
                .parse()
                .map(Change::User)
                .unwrap_or(Change::Following(true)),
            Some(("e", email)) => Change::Email(email.to_owned()),
            _ if payload == "k" => Change::SigningKeys,
            // Unknown: drop everything, as after a gap in the feed.
            _ => Change::Following(true),
        }
    }
}

type ChangeHook = Arc<dyn Fn(&Change) + Send + Sync>;

/// Where a store reports changes: its own writes right after they commit
/// (so this node's next request sees them), and on PostgreSQL the other
/// nodes' writes as their notifications arrive.
#[derive(Default)]
pub struct ChangeFeed {
    hooks: RwLock<Vec<ChangeHook>>,
}

impl ChangeFeed {
    pub fn subscribe(&self, hook: impl Fn(&Change) + Send + Sync + 'static) {
        self.hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(hook));
    }

    pub fn emit(&self, change: Change) {
        let hooks = self.hooks.read().unwrap_or_else(|e| e.into_inner());
        for hook in hooks.iter() {
            hook(&change);
        }
    }

    pub(crate) fn users(&self, ids: impl IntoIterator<Item = Uuid>) {
        for id in ids {
            self.emit(Change::User(id));
        }
    }
}
