//! Layered configuration: defaults < TOML file (`--config`) < `TESSERA_*`
//! environment variables, with `__` between a section and its key
//! (`TESSERA_SECURITY__LOCKOUT_MINUTES=30`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    /// Connections in the pool (SQLite: readers, at most 8; one writer).
    pub database_max_connections: u32,
    /// How long a query waits for the database before its request answers
    /// `503 UNAVAILABLE`: for a pooled connection on PostgreSQL (also while
    /// the server is down or restarting), for another process's write lock
    /// on SQLite (its busy timeout). Below `http.request_timeout_seconds`,
    /// so an outage answers as one rather than as a slow request.
    pub database_timeout_ms: u64,
    pub public_url: Url,
    /// Where browsers go after a redirect flow; the public URL when unset.
    pub app_url: Option<Url>,
    #[serde(serialize_with = "serialize_secret_opt")]
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    #[serde(deserialize_with = "string_list")]
    pub cors_origins: Vec<String>,
    #[serde(deserialize_with = "string_list")]
    pub trusted_proxies: Vec<String>,
    #[serde(serialize_with = "serialize_secret_opt")]
    pub cron_secret: Option<SecretString>,
    /// Addresses or CIDRs whose clients reach the operator endpoints
    /// (`GET /metrics`, `GET /api/auth/validate`) without a bearer secret.
    /// Empty by default: loopback is not trusted either (on a shared machine,
    /// or behind a local proxy, "from 127.0.0.1" says nothing about who asks).
    #[serde(deserialize_with = "string_list")]
    pub admin_allow_from: Vec<String>,
    pub log_format: Option<LogFormat>,
    pub auth: AuthConfig,
    pub security: SecurityConfig,
    pub session: SessionConfig,
    pub jwt: JwtConfig,
    pub turnstile: TurnstileConfig,
    pub oauth: BTreeMap<String, OAuthProviderConfig>,
    pub mail: MailConfig,
    pub http: HttpConfig,
    pub argon2: Argon2Config,
    pub plans: PlansConfig,
    pub mfa: MfaConfig,
    pub webauthn: WebauthnConfig,
    pub cache: CacheConfig,
    pub jobs: JobsConfig,
    pub ui: UiConfig,
    pub metrics: MetricsConfig,
    /// `redis://host:port/db`: per-IP rate-limit counters live there,
    /// shared by every node. Unset: in the database on PostgreSQL, in the
    /// process on SQLite (one node).
    #[serde(serialize_with = "serialize_secret_opt")]
    pub redis_url: Option<SecretString>,
    /// Prepended to every Redis key, so installations can share a server.
    pub redis_key_prefix: String,
    /// This node's name in job records and outbox claims; the host name and
    /// process id when unset.
    pub node_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct UiConfig {
    /// Serve the hosted pages under `/ui`.
    pub enabled: bool,
    /// Where mailed links point, with `{token}` where the token goes; the
    /// hosted pages (`{public_url}/ui/…?token={token}`) when unset.
    pub verify_email_url: Option<String>,
    pub reset_password_url: Option<String>,
    pub accept_invite_url: Option<String>,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            enabled: true,
            verify_email_url: None,
            reset_password_url: None,
            accept_invite_url: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct CacheConfig {
    /// How long a resolved credential, a user's tenants or an address's
    /// invitations may be served from memory (0: never). Changes drop
    /// entries at once, on every node; this bounds a change whose
    /// notification was lost.
    pub max_age_ms: u64,
    /// Entries per cache.
    pub max_entries: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_age_ms: 1000,
            max_entries: 100_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct JobsConfig {
    /// How often expired sessions, tokens, sign-in states, counters and
    /// mail past `mail.retention_days` are deleted (by one node per turn;
    /// 0: never).
    pub sweep_interval_seconds: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            sweep_interval_seconds: 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` (Prometheus text format).
    pub enabled: bool,
    /// A bearer token for scrapers. `/metrics` answers a request carrying
    /// it (or the cron secret), or a client in `admin_allow_from`.
    #[serde(serialize_with = "serialize_secret_opt")]
    pub token: Option<SecretString>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            token: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default)]
pub struct WebauthnConfig {
    /// The relying party id passkeys are bound to: the public URL's host
    /// when unset (a parent domain of every origin below).
    pub rp_id: Option<String>,
    /// Origins whose pages may use passkeys; the public URL's when empty.
    #[serde(deserialize_with = "string_list")]
    pub origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct MfaConfig {
    /// Base64 of 32 bytes: the AES-256-GCM key TOTP secrets are sealed
    /// with. When unset, one is generated on first start and kept in the
    /// database (`app_secrets`).
    #[serde(serialize_with = "serialize_secret_opt")]
    pub encryption_key: Option<SecretString>,
    /// The issuer shown in authenticator apps.
    pub issuer: String,
}

impl Default for MfaConfig {
    fn default() -> Self {
        MfaConfig {
            encryption_key: None,
            issuer: "Tessera".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct PlansConfig {
    /// The plan users go back to when theirs expires.
    pub default_plan: String,
    /// How often the plan check runs inside the server (0: never).
    pub check_interval_seconds: u64,
}

impl Default for PlansConfig {
    fn default() -> Self {
        PlansConfig {
            default_plan: "free".into(),
            check_interval_seconds: 3600,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default)]
pub struct AuthConfig {
    /// When true, sign-up sets no session and login refuses unverified emails.
    pub require_verified_email: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct SecurityConfig {
    pub lockout_max_attempts: u32,
    pub lockout_minutes: u32,
    pub rate_limit_per_minute: u32,
    /// Reset or verification mails one address may receive per hour; past
    /// it, requests are answered as usual and send nothing.
    pub mail_per_address_per_hour: u32,
    /// A HIBP-style k-anonymity range API (`{url}{first five hex of the
    /// SHA-1}`), e.g. `https://api.pwnedpasswords.com/range/`. Off when
    /// unset; when set but unreachable, passwords are accepted and a warning
    /// is logged.
    pub breached_password_url: Option<String>,
    /// The failure budget of one device cookie (OWASP device cookies): a
    /// client that signed in to the account before keeps its own, smaller
    /// budget while the account is locked for everyone else.
    pub device_lockout_max_attempts: u32,
    /// How long a device cookie is honoured after the sign-in that set it.
    pub device_cookie_days: u32,
    /// Invitations one member may send per hour, on all tenants together
    /// (invitations are mail to strangers: not a relay).
    pub invites_per_hour: u32,
    /// Tenants one user may own, and create per hour.
    pub max_tenants_per_user: u32,
    pub tenants_per_hour: u32,
    /// Live personal access tokens per user.
    pub max_tokens_per_user: u32,
    /// Passkeys per user.
    pub max_passkeys_per_user: u32,
    /// The highest bcrypt cost an imported hash may have: above it the
    /// import refuses the line, and a stored one is never computed at login
    /// (each step doubles what a login costs, for everyone: failed logins
    /// are padded to the slowest hash on record).
    pub max_bcrypt_cost: u32,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            lockout_max_attempts: 5,
            lockout_minutes: 15,
            rate_limit_per_minute: 30,
            mail_per_address_per_hour: 5,
            breached_password_url: None,
            device_lockout_max_attempts: 3,
            device_cookie_days: 365,
            invites_per_hour: 20,
            max_tenants_per_user: 100,
            tenants_per_hour: 10,
            max_tokens_per_user: 100,
            max_passkeys_per_user: 20,
            max_bcrypt_cost: crate::crypto::password::DEFAULT_MAX_BCRYPT_COST,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct SessionConfig {
    /// Absolute lifetime of a session.
    pub ttl_hours: u32,
    /// A session unused for this long expires.
    pub idle_hours: u32,
    /// `Secure` on cookies; follows the public URL's scheme when unset.
    pub cookie_secure: Option<bool>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            ttl_hours: 720,
            idle_hours: 168,
            cookie_secure: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct JwtConfig {
    pub ttl_seconds: u32,
    /// The `aud` claim of issued tokens, required on verification.
    pub audience: String,
    /// A new signing key every this many days (0: never). The old key stays
    /// in the JWKS, and valid, until the tokens it signed have expired.
    pub rotation_days: u32,
    /// How long a spent refresh token still answers with the pair it was
    /// exchanged for (parallel or retried refreshes); a use after that
    /// revokes the session.
    pub refresh_grace_seconds: u32,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            ttl_seconds: 900,
            audience: "tessera".into(),
            rotation_days: 30,
            refresh_grace_seconds: 5,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct TurnstileConfig {
    #[serde(serialize_with = "serialize_secret_opt")]
    pub secret: Option<SecretString>,
    pub verify_url: String,
    /// The public site key the hosted pages show the widget with.
    pub site_key: Option<String>,
}

impl Default for TurnstileConfig {
    fn default() -> Self {
        TurnstileConfig {
            secret: None,
            verify_url: "https://challenges.cloudflare.com/turnstile/v0/siteverify".into(),
            site_key: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default)]
pub struct OAuthProviderConfig {
    pub client_id: Option<String>,
    #[serde(serialize_with = "serialize_secret_opt")]
    pub client_secret: Option<SecretString>,
    /// OIDC issuer, found by discovery; `google` defaults to Google's.
    pub issuer: Option<String>,
    /// `oidc` (the default) or `github` (the default for a provider named
    /// `github`).
    pub kind: Option<OAuthKind>,
    /// Comma-separated. Defaults: `openid, email, profile` (OIDC),
    /// `read:user, user:email` (GitHub).
    #[serde(default, deserialize_with = "string_list_opt")]
    pub scopes: Option<Vec<String>>,
    /// GitHub-kind endpoints, for GitHub Enterprise; github.com by default.
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub api_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OAuthKind {
    Oidc,
    Github,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct MailConfig {
    /// How often the outbox worker looks for due mail when not woken.
    pub poll_seconds: u64,
    /// Give up on a message after this many failed attempts (it stays in the
    /// outbox with its last error for an operator to inspect, for
    /// `retention_days`).
    pub max_attempts: u32,
    /// Days a given-up message (and the link in it) stays in the outbox
    /// before the sweep deletes it. Delivered messages are deleted at once.
    pub retention_days: u32,
    /// How long a node holds the messages it claimed; a node that dies
    /// mid-send leaves them to the others after this.
    pub claim_seconds: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            poll_seconds: 5,
            max_attempts: 25,
            retention_days: 7,
            claim_seconds: 120,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes (413 above).
    pub body_limit_bytes: usize,
    /// A request taking longer than this is answered 503.
    pub request_timeout_seconds: u64,
    /// A connection that has not sent a whole request head (request line
    /// and headers) this long after it opened, or after its previous
    /// answer, is closed: slowloris clients and idle keep-alive connections
    /// alike.
    pub header_timeout_seconds: u64,
    /// Connections served at once. At the limit, new connections wait in
    /// the listen backlog until one closes (lowered at start-up to what the
    /// open-files limit leaves).
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_limit_bytes: 64 * 1024,
            request_timeout_seconds: 30,
            header_timeout_seconds: 15,
            max_connections: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes computed at once; defaults to the number of cores.
    pub max_concurrent: Option<usize>,
    /// Hashes allowed to wait for a worker; past that, `503` at once.
    pub max_queue: usize,
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            max_concurrent: None,
            max_queue: 64,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            database_url: "sqlite://tessera.db?mode=rwc".into(),
            database_max_connections: 16,
            database_timeout_ms: 5_000,
            public_url: Url::parse("http://localhost:8080").expect("valid default URL"),
            app_url: None,
            smtp_url: None,
            mail_from: "Tessera <no-reply@localhost>".into(),
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            cron_secret: None,
            admin_allow_from: Vec::new(),
            log_format: None,
            auth: AuthConfig::default(),
            security: SecurityConfig::default(),
            session: SessionConfig::default(),
            jwt: JwtConfig::default(),
            turnstile: TurnstileConfig::default(),
            oauth: BTreeMap::new(),
            mfa: MfaConfig::default(),
            webauthn: WebauthnConfig::default(),
            mail: MailConfig::default(),
            http: HttpConfig::default(),
            argon2: Argon2Config::default(),
            plans: PlansConfig::default(),
            cache: CacheConfig::default(),
            jobs: JobsConfig::default(),
            ui: UiConfig::default(),
            metrics: MetricsConfig::default(),
            redis_url: None,
            redis_key_prefix: "tessera".into(),
            node_id: None,
        }
    }
}

impl Config {
    /// Defaults, then the TOML file if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            .merge(Env::prefixed("TESSERA_").split("__"))
            .extract::<Config>()
            .map_err(Box::new)
    }

    /// Refuses values that would make the server misbehave.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (
                "session.ttl_hours",
                u64::from(self.session.ttl_hours),
                1,
                24 * 365 * 10,
            ),
            (
                "session.idle_hours",
                u64::from(self.session.idle_hours),
                1,
                24 * 365 * 10,
            ),
            (
                "jwt.ttl_seconds",
                u64::from(self.jwt.ttl_seconds),
                1,
                60 * 60 * 24 * 30,
            ),
            (
                "jwt.refresh_grace_seconds",
                u64::from(self.jwt.refresh_grace_seconds),
                0,
                300,
            ),
            (
                "security.lockout_max_attempts",
                u64::from(self.security.lockout_max_attempts),
                1,
                1000,
            ),
            (
                "security.lockout_minutes",
                u64::from(self.security.lockout_minutes),
                1,
                60 * 24 * 30,
            ),
            (
                "security.mail_per_address_per_hour",
                u64::from(self.security.mail_per_address_per_hour),
                1,
                1000,
            ),
            (
                "http.body_limit_bytes",
                self.http.body_limit_bytes as u64,
                1024,
                16 << 20,
            ),
            (
                "http.request_timeout_seconds",
                self.http.request_timeout_seconds,
                1,
                3600,
            ),
            (
                "http.header_timeout_seconds",
                self.http.header_timeout_seconds,
                1,
                3600,
            ),
            (
                "http.max_connections",
                self.http.max_connections as u64,
                1,
                1_000_000,
            ),
            (
                "database_timeout_ms",
                self.database_timeout_ms,
                100,
                600_000,
            ),
            ("mail.poll_seconds", self.mail.poll_seconds, 1, 3600),
            (
                "mail.retention_days",
                u64::from(self.mail.retention_days),
                1,
                3650,
            ),
            (
                "security.max_bcrypt_cost",
                u64::from(self.security.max_bcrypt_cost),
                4,
                16,
            ),
            ("mail.claim_seconds", self.mail.claim_seconds, 5, 24 * 3600),
            ("cache.max_age_ms", self.cache.max_age_ms, 0, 3_600_000),
            (
                "jwt.rotation_days",
                u64::from(self.jwt.rotation_days),
                0,
                3650,
            ),
        ];
        for (key, value, min, max) in checks {
            if !(min..=max).contains(&value) {
                return Err(format!(
                    "{key} must be between {min} and {max}, not {value}"
                ));
            }
        }
        for (key, template) in [
            ("ui.verify_email_url", &self.ui.verify_email_url),
            ("ui.reset_password_url", &self.ui.reset_password_url),
            ("ui.accept_invite_url", &self.ui.accept_invite_url),
        ] {
            if let Some(template) = template {
                let parsed = Url::parse(&template.replace("{token}", "t"));
                if !template.contains("{token}")
                    || !parsed.is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                {
                    return Err(format!(
                        "{key} must be an http(s) URL with {{token}} in it, not {template:?}"
                    ));
                }
            }
        }
        if let Some(url) = &self.security.breached_password_url {
            match Url::parse(url) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                _ => {
                    return Err(format!(
                        "security.breached_password_url must be an http(s) URL, not {url:?}"
                    ))
                }
            }
        }
        Ok(())
    }

    /// The public URL without a trailing slash, for building links.
    pub fn public_base(&self) -> &str {
        self.public_url.as_str().trim_end_matches('/')
    }

    pub fn app_url(&self) -> &Url {
        self.app_url.as_ref().unwrap_or(&self.public_url)
    }

    /// This node's name: `node_id`, else the host name and process id.
    pub fn node_name(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "node".into());
            format!("{host}:{}", std::process::id())
        })
    }

    pub fn cookie_secure(&self) -> bool {
        self.session
            .cookie_secure
            .unwrap_or(self.public_url.scheme() == "https")
    }
}

/// Accepts `"a, b"` (as environment variables give it) or `["a", "b"]`.
fn string_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    let items = match Raw::deserialize(deserializer)? {
        Raw::One(s) => s.split(',').map(str::to_owned).collect(),
        Raw::Many(v) => v,
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

fn string_list_opt<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    string_list(deserializer).map(Some)
}

/// Secrets are never written back out (the defaults have none anyway).
fn serialize_secret_opt<S: serde::Serializer>(
    value: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => serializer.serialize_some("[redacted]"),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
// `Jail` closures must return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_sections_and_lists() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TESSERA_SECURITY__LOCKOUT_MINUTES", "30");
            jail.set_env("TESSERA_CORS_ORIGINS", "https://a.test, https://b.test");
            jail.set_env("TESSERA_AUTH__REQUIRE_VERIFIED_EMAIL", "true");
            jail.set_env("TESSERA_OAUTH__GOOGLE__CLIENT_ID", "cid");
            let config = Config::load(None).expect("config loads");
            assert_eq!(config.security.lockout_minutes, 30);
            assert_eq!(config.security.lockout_max_attempts, 5);
            assert_eq!(
                config.cors_origins,
                vec!["https://a.test", "https://b.test"]
            );
            assert!(config.auth.require_verified_email);
            assert_eq!(config.oauth["google"].client_id.as_deref(), Some("cid"));
            Ok(())
        });
    }

    #[test]
    fn toml_file_is_layered_under_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "tessera.toml",
                "listen = \"127.0.0.1:9999\"\n[jwt]\nttl_seconds = 60\n",
            )?;
            jail.set_env("TESSERA_JWT__TTL_SECONDS", "120");
            let config = Config::load(Some(Path::new("tessera.toml"))).expect("config loads");
            assert_eq!(config.listen.port(), 9999);
            assert_eq!(config.jwt.ttl_seconds, 120);
            Ok(())
        });
    }
}
