//! Use cases. Every surface calls these; none of them knows about HTTP.

use std::sync::{Arc, RwLock};

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::sync::Notify;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::jwt::{self, JwtKeys};
use crate::crypto::password::PasswordHasher;
use crate::store::Store;

mod accounts;
mod admin;
mod audit;
mod breach;
pub mod cache;
mod export;
mod import;
mod jobs;
mod limits;
mod mfa;
mod oauth;
mod passkeys;
mod sessions;
mod tenants;
mod tokens;

pub use accounts::{SignupInput, SignupOutcome, RESET_TTL, VERIFY_TTL};
pub use admin::UserPatch;
pub use audit::{Audit, AuditAction};
pub use export::AccountExport;
pub use import::ImportReport;
pub use mfa::{
    SecondFactor, TotpSetup, TwoFactorStatus, CHALLENGE_TTL as TWO_FACTOR_CHALLENGE_TTL,
};
pub use oauth::{
    CallbackParams, OAuthCallback, OAuthResult, StartedOAuth, STATE_TTL as OAUTH_STATE_TTL,
};
pub use passkeys::{PasskeyAssertion, PasskeyCeremony};
pub use sessions::{Credential, LoginOutcome, Principal, PrincipalKind, RefreshedPair};
pub use tenants::INVITE_TTL;
pub use tokens::{IssuedJwt, NewPatInput};

/// The kinds of link Tessera mails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailLink {
    VerifyEmail,
    ResetPassword,
    AcceptInvite,
}

/// Who is calling, as far as the network tells: kept on sessions.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's address: the peer, or what a trusted proxy forwarded.
    pub addr: Option<std::net::IpAddr>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The client's address is in `admin_allow_from` and no untrusted peer
    /// relayed it (see `http::extract`).
    pub admin_allowed: bool,
    /// The device cookie the client sent, unchecked (see `crypto::device`).
    pub device: Option<String>,
}

/// The application core: configuration, store, clock, hashing pool and keys.
pub struct Tessera {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub hasher: PasswordHasher,
    /// The JWT keys, reloaded when another node (or the rotation job)
    /// changes them; read with `keys()`.
    keys: RwLock<Arc<JwtKeys>>,
    /// Credentials, tenants and invitations held for a moment; emptied by
    /// the store's change feed.
    pub cache: Arc<cache::Caches>,
    /// Woken when the signing keys changed (see `jobs`).
    pub keys_changed: Arc<Notify>,
    /// This node's name in claims and job records.
    pub node: String,
    pub metrics: crate::metrics::Metrics,
    /// Wakes the outbox worker after mail is queued.
    pub mail_wake: Arc<Notify>,
    /// Work a request starts after answering; shutdown waits for it.
    pub tasks: TaskTracker,
    pub limiter: limits::RateLimiter,
    /// For calls to third parties (the bot-check verifier).
    pub http_client: reqwest::Client,
    /// `trusted_proxies`, parsed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `admin_allow_from`, parsed.
    pub admin_allow_from: Vec<ipnet::IpNet>,
    /// Discovery documents of OAuth providers.
    pub oauth: oauth::OAuthCache,
    /// For calls to OAuth providers: no redirects followed.
    pub oauth_http: reqwest::Client,
    /// Seals TOTP secrets at rest.
    pub totp_box: crate::crypto::totp::SecretBox,
    /// `None` when the public URL cannot host passkeys (an IP address).
    pub webauthn: Option<webauthn_rs::Webauthn>,
    /// Makes stable decoy credential ids for emails without passkeys.
    passkey_decoy_key: Vec<u8>,
    /// Signs device cookies (the same key on every node).
    pub device_key: crate::crypto::device::DeviceKey,
    /// Signs the hosted pages' anonymous-form tokens (every node alike).
    pub form_signer: crate::crypto::token::Signer,
    /// Derives each refresh token's successor (see `refresh_pair`).
    refresh_signer: crate::crypto::token::Signer,
}

/// `429 RATE_LIMITED` for a budget on what an account creates, naming the
/// limit (`per_hour`: it frees up within the hour; else it is a cap).
pub(crate) fn over_budget(what: &str, limit: u32, per_hour: bool) -> crate::error::AppError {
    let message = if per_hour {
        format!("You may create at most {limit} {what} per hour; try again later.")
    } else {
        format!("You may have at most {limit} {what}; remove one first.")
    };
    crate::error::AppError::new(crate::error::ErrorCode::RateLimited, message)
        .with_retry_after(if per_hour { 3600 } else { 60 })
}

impl Tessera {
    /// Builds the core on a migrated store, creating the JWT signing key on
    /// first start. Each step may refuse to start (a store error, a bad
    /// setting); they run in this order, so the first problem is the one
    /// reported.
    pub async fn new(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Tessera> {
        let keys = load_signing_keys(&config, store.as_ref(), clock.as_ref()).await?;
        let metrics = crate::metrics::Metrics::new();
        let cache = Arc::new(cache::Caches::new(&config.cache, metrics.clone()));
        let keys_changed = Arc::new(Notify::new());
        follow_store_changes(store.as_ref(), &cache, &keys_changed);
        let secrets = SharedSecrets::load(store.as_ref(), clock.as_ref()).await?;
        let hasher = PasswordHasher::new(&config.argon2)?
            .with_max_bcrypt_cost(config.security.max_bcrypt_cost);
        let totp_box = Self::totp_box(&config, store.as_ref(), clock.as_ref()).await?;
        let webauthn = webauthn_or_off(&config)?;
        let trusted_proxies = parse_networks("trusted_proxies", &config.trusted_proxies)?;
        let admin_allow_from = parse_networks("admin_allow_from", &config.admin_allow_from)?;
        let limiter = limits::RateLimiter::new(
            config.redis_url.as_ref().map(|u| u.expose_secret()),
            &config.redis_key_prefix,
            &config.database_url,
        )?;
        let (http_client, oauth_http) = http_clients()?;
        Ok(Tessera {
            node: config.node_name(),
            config: Arc::new(config),
            store,
            clock,
            hasher,
            keys: RwLock::new(Arc::new(keys)),
            cache,
            keys_changed,
            metrics,
            mail_wake: Arc::new(Notify::new()),
            tasks: TaskTracker::new(),
            limiter,
            http_client,
            trusted_proxies,
            admin_allow_from,
            oauth: oauth::OAuthCache::default(),
            totp_box,
            webauthn,
            passkey_decoy_key: secrets.passkey_decoy_key,
            device_key: secrets.device_key,
            form_signer: secrets.form_signer,
            refresh_signer: secrets.refresh_signer,
            oauth_http,
        })
    }

    /// The link a mail carries: the operator's template for its kind, else
    /// the hosted page (`{public_url}/ui/<page>?token=<token>`).
    pub fn mail_link(&self, kind: MailLink, token: &str) -> String {
        let (template, page) = match kind {
            MailLink::VerifyEmail => (&self.config.ui.verify_email_url, "verify-email"),
            MailLink::ResetPassword => (&self.config.ui.reset_password_url, "reset-password"),
            MailLink::AcceptInvite => (&self.config.ui.accept_invite_url, "accept-invite"),
        };
        match template {
            // Tokens are URL-safe base64: nothing to escape.
            Some(template) => template.replace("{token}", token),
            None => format!("{}/ui/{page}?token={token}", self.config.public_base()),
        }
    }

    /// The JWT keys in force.
    pub fn keys(&self) -> Arc<JwtKeys> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the signing keys again (after a rotation, here or elsewhere).
    pub async fn reload_keys(&self) -> anyhow::Result<()> {
        let stored = self.store.signing_keys().await?;
        let keys = JwtKeys::new(
            &stored,
            self.config.public_base(),
            &self.config.jwt.audience,
        )
        .context("loading JWT signing keys")?;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(())
    }
}

/// The JWT signing keys, the first one created on an empty store. Nodes
/// starting together may each create one; the store keeps the first, and
/// every node uses what is stored.
async fn load_signing_keys(
    config: &Config,
    store: &dyn Store,
    clock: &dyn Clock,
) -> anyhow::Result<JwtKeys> {
    let mut stored = store.signing_keys().await?;
    if stored.is_empty() {
        store
            .add_first_signing_key(&jwt::generate_key(clock.now())?)
            .await?;
        // Another node may have raced us; everyone uses what is stored.
        stored = store.signing_keys().await?;
    }
    JwtKeys::new(&stored, config.public_base(), &config.jwt.audience)
        .context("loading JWT signing keys")
}

/// Follows the store's change feed: empties what `cache` holds of a changed
/// record, and wakes `keys_changed` when the signing keys changed.
fn follow_store_changes(store: &dyn Store, cache: &Arc<cache::Caches>, keys_changed: &Arc<Notify>) {
    let cache = cache.clone();
    let keys_changed = keys_changed.clone();
    store.changes().subscribe(move |change| {
        cache.on_change(change);
        // Also when the feed (re)connects: a rotation may have
        // happened while it was down (or before it started).
        if matches!(
            change,
            crate::store::Change::SigningKeys | crate::store::Change::Following(true)
        ) {
            keys_changed.notify_one();
        }
    });
}

/// The keys every node must hold alike, generated by the first node to ask
/// and stored (see `Store::app_secret`).
struct SharedSecrets {
    /// Every node must answer an unknown email with the same decoy.
    passkey_decoy_key: Vec<u8>,
    device_key: crate::crypto::device::DeviceKey,
    form_signer: crate::crypto::token::Signer,
    refresh_signer: crate::crypto::token::Signer,
}

impl SharedSecrets {
    /// Reads (or, on first start, creates) each secret in turn.
    async fn load(store: &dyn Store, clock: &dyn Clock) -> anyhow::Result<SharedSecrets> {
        use crate::crypto::{device::DeviceKey, token::Signer};
        Ok(SharedSecrets {
            passkey_decoy_key: shared_secret(store, clock, "passkey_decoy_key").await?,
            device_key: DeviceKey::new(&shared_secret(store, clock, "device_cookie_key").await?),
            form_signer: Signer::new(&shared_secret(store, clock, "form_token_key").await?),
            refresh_signer: Signer::new(&shared_secret(store, clock, "refresh_token_key").await?),
        })
    }
}

/// The server secret `name`, stored as a new random key on first use.
async fn shared_secret(
    store: &dyn Store,
    clock: &dyn Clock,
    name: &str,
) -> anyhow::Result<Vec<u8>> {
    Ok(store
        .app_secret(name, &crate::crypto::totp::new_secret_key(), clock.now())
        .await?)
}

/// The passkey relying party, or `None` (passkeys off, with a warning) when
/// the public URL's host cannot be one. When passkeys were configured
/// explicitly, the same failure is a mistake worth refusing to start for.
fn webauthn_or_off(config: &Config) -> anyhow::Result<Option<webauthn_rs::Webauthn>> {
    match passkeys::build_webauthn(config) {
        Ok(webauthn) => Ok(Some(webauthn)),
        Err(err) if config.webauthn.rp_id.is_some() || !config.webauthn.origins.is_empty() => {
            Err(err)
        }
        Err(err) => {
            tracing::warn!(error = %err, "passkeys are off: the public URL's host cannot be a WebAuthn relying party id (set webauthn.rp_id)");
            Ok(None)
        }
    }
}

/// The networks of setting `key`: each entry a CIDR or a single address.
fn parse_networks(key: &str, list: &[String]) -> anyhow::Result<Vec<ipnet::IpNet>> {
    list.iter()
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .with_context(|| format!("{key}: {p:?} is not an IP address or CIDR"))
        })
        .collect()
}

/// The HTTP client for third parties (the bot-check verifier), then the one
/// for OAuth providers (no redirects followed).
fn http_clients() -> anyhow::Result<(reqwest::Client, reqwest::Client)> {
    let http_client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
    let oauth_http = oauth::provider_http_client().context("building the OAuth HTTP client")?;
    Ok((http_client, oauth_http))
}
