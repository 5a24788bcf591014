//! Social login: OpenID Connect providers (discovery, PKCE, nonce, ID-token
//! verification with key rotation) and GitHub's plain OAuth2, on one flow
//! shared by every surface. The linking rules are in `docs/social-login.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError,
    TokenResponse,
};
use serde::Deserialize;
use serde_json::json;
use url::Url;
use uuid::Uuid;

use super::audit::{Audit, AuditAction};
use super::sessions::LoginOutcome;
use super::{ClientInfo, Tessera};
use crate::config::{OAuthKind, OAuthProviderConfig};
use crate::crypto::token::{self, constant_time_eq, hash_secret};
use crate::domain::Email;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::store::{
    Identity, NewIdentity, NewOAuthState, NewTenant, NewUser, OAuthState, StoreError,
    UnlinkOutcome, User,
};

/// How long a redirect to a provider may take to come back.
pub const STATE_TTL: Duration = Duration::minutes(10);
/// Discovery documents and key sets are fetched again after this long (and
/// at once when an ID token names a key not seen yet).
const METADATA_TTL: StdDuration = StdDuration::from_secs(3600);
const PROVIDER_TIMEOUT: StdDuration = StdDuration::from_secs(10);
const GOOGLE_ISSUER: &str = "https://accounts.google.com";
const GITHUB_ISSUER: &str = "https://github.com";

/// Which surface's callback the provider sends the browser back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCallback {
    /// `/api/v1/auth/oauth/{provider}/callback`
    Api,
    /// `/auth/callback/{provider}`
    Dashboard,
    /// `/api/auth/google/callback`
    Legacy,
}

impl OAuthCallback {
    fn path(self, provider: &str) -> String {
        match self {
            OAuthCallback::Api => format!("/api/v1/auth/oauth/{provider}/callback"),
            OAuthCallback::Dashboard => format!("/auth/callback/{provider}"),
            OAuthCallback::Legacy => format!("/api/auth/{provider}/callback"),
        }
    }
}

/// Where to send the browser to sign in, and the state to keep in its cookie.
pub struct StartedOAuth {
    pub authorize_url: Url,
    pub state: String,
}

/// The query of a provider's redirect back.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
}

pub enum OAuthResult {
    /// Signed in (or, once 2FA is on, asked for the second step).
    SignedIn {
        outcome: Box<LoginOutcome>,
        redirect_to: Url,
    },
    /// A signed-in user linked another provider.
    Linked { redirect_to: Url },
}

/// What a provider told us about the person who signed in.
struct ProviderIdentity {
    issuer: String,
    subject: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
}

/// A configured provider, presets applied.
struct Provider {
    name: String,
    kind: OAuthKind,
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    scopes: Vec<String>,
    config: OAuthProviderConfig,
}

/// Discovery documents per issuer, with the time they were fetched.
#[derive(Default)]
pub struct OAuthCache {
    metadata: Mutex<HashMap<String, (Instant, Arc<CoreProviderMetadata>)>>,
}

/// The HTTP client for providers: never follows redirects (SSRF).
pub fn provider_http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PROVIDER_TIMEOUT)
        .build()
}

fn sign_in_failed(message: &str) -> AppError {
    AppError::new(ErrorCode::Unauthorized, message)
}

fn invalid_state() -> AppError {
    AppError::bad_request(
        "This sign-in attempt is invalid, expired or was already used; start again.",
    )
}

fn provider_unreachable(err: impl std::fmt::Display) -> AppError {
    tracing::warn!(error = %err, "OAuth provider unreachable");
    AppError::unavailable("The sign-in provider cannot be reached; try again shortly.")
}

impl Tessera {
    /// `raw` as an absolute URL when it is on the app's origin, the public
    /// origin or `cors_origins`; relative paths resolve against the app URL.
    /// The one place redirect targets are checked.
    pub fn redirect_target(&self, raw: &str) -> Option<Url> {
        let app = self.config.app_url();
        let url = app.join(raw.trim()).ok()?;
        if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() {
            return None;
        }
        let origin = url.origin().ascii_serialization();
        let allowed = origin == app.origin().ascii_serialization()
            || origin == self.config.public_url.origin().ascii_serialization()
            || self
                .config
                .cors_origins
                .iter()
                .any(|o| o.trim_end_matches('/') == origin);
        allowed.then_some(url)
    }

    /// The allowed target, else the app URL.
    pub fn redirect_or_app(&self, raw: Option<&str>) -> Url {
        raw.and_then(|r| self.redirect_target(r))
            .unwrap_or_else(|| self.config.app_url().clone())
    }

    fn provider(&self, name: &str) -> AppResult<Provider> {
        let unknown = || AppError::not_found(format!("No sign-in provider named {name:?}."));
        let config = self.config.oauth.get(name).ok_or_else(unknown)?;
        let client_id = config.client_id.clone().ok_or_else(unknown)?;
        let kind = config.kind.unwrap_or(if name == "github" {
            OAuthKind::Github
        } else {
            OAuthKind::Oidc
        });
        let issuer = match kind {
            OAuthKind::Oidc => config
                .issuer
                .clone()
                .or_else(|| (name == "google").then(|| GOOGLE_ISSUER.to_owned()))
                .ok_or_else(unknown)?,
            OAuthKind::Github => GITHUB_ISSUER.to_owned(),
        };
        let scopes = config.scopes.clone().unwrap_or_else(|| match kind {
            OAuthKind::Oidc => vec!["openid".into(), "email".into(), "profile".into()],
            OAuthKind::Github => vec!["read:user".into(), "user:email".into()],
        });
        use secrecy::ExposeSecret;
        Ok(Provider {
            name: name.to_owned(),
            kind,
            issuer,
            client_id,
            client_secret: config
                .client_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
            scopes,
            config: config.clone(),
        })
    }

    async fn metadata(&self, issuer: &str, fresh: bool) -> AppResult<Arc<CoreProviderMetadata>> {
        if !fresh {
            let cache = self
                .oauth
                .metadata
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some((at, metadata)) = cache.get(issuer) {
                if at.elapsed() < METADATA_TTL {
                    return Ok(metadata.clone());
                }
            }
        }
        let issuer_url = IssuerUrl::new(issuer.to_owned()).map_err(AppError::internal)?;
        let metadata = CoreProviderMetadata::discover_async(issuer_url, &self.oauth_http)
            .await
            .map_err(provider_unreachable)?;
        let metadata = Arc::new(metadata);
        self.oauth
            .metadata
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(issuer.to_owned(), (Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    fn callback_url(&self, provider: &str, callback: OAuthCallback) -> AppResult<Url> {
        let raw = format!("{}{}", self.config.public_base(), callback.path(provider));
        Url::parse(&raw).map_err(AppError::internal)
    }

    /// Starts a sign-in (or, with `link_user`, a link) at `provider`.
    pub async fn oauth_start(
        &self,
        provider: &str,
        callback: OAuthCallback,
        redirect_to: Option<&str>,
        link_user: Option<&User>,
    ) -> AppResult<StartedOAuth> {
        if let Some(user) = link_user {
            Self::require_verified(user)?;
        }
        let provider = self.provider(provider)?;
        let redirect_uri = self.callback_url(&provider.name, callback)?;
        let state = token::random_secret();
        let nonce = token::random_secret();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let authorize_url = match provider.kind {
            OAuthKind::Oidc => {
                let metadata = self.metadata(&provider.issuer, false).await?;
                let client = CoreClient::from_provider_metadata(
                    (*metadata).clone(),
                    ClientId::new(provider.client_id.clone()),
                    provider.client_secret.clone().map(ClientSecret::new),
                )
                .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()));
                let state_for_url = state.clone();
                let nonce_for_url = nonce.clone();
                let mut request = client
                    .authorize_url(
                        CoreAuthenticationFlow::AuthorizationCode,
                        move || CsrfToken::new(state_for_url),
                        move || Nonce::new(nonce_for_url),
                    )
                    .set_pkce_challenge(challenge);
                for scope in &provider.scopes {
                    request = request.add_scope(Scope::new(scope.clone()));
                }
                request.url().0
            }
            OAuthKind::Github => {
                let mut url = Url::parse(
                    provider
                        .config
                        .authorize_url
                        .as_deref()
                        .unwrap_or("https://github.com/login/oauth/authorize"),
                )
                .map_err(AppError::internal)?;
                url.query_pairs_mut()
                    .append_pair("response_type", "code")
                    .append_pair("client_id", &provider.client_id)
                    .append_pair("redirect_uri", redirect_uri.as_str())
                    .append_pair("scope", &provider.scopes.join(" "))
                    .append_pair("state", &state)
                    .append_pair("code_challenge", challenge.as_str())
                    .append_pair("code_challenge_method", "S256");
                url
            }
        };
        let now = self.clock.now();
        self.store
            .save_oauth_state(&NewOAuthState {
                state_hash: hash_secret(&state),
                state: OAuthState {
                    provider: provider.name.clone(),
                    callback: redirect_uri.to_string(),
                    pkce_verifier: verifier.secret().clone(),
                    nonce,
                    redirect_to: self.redirect_or_app(redirect_to).to_string(),
                    link_user_id: link_user.map(|u| u.id),
                    created_at: now,
                    expires_at: now + STATE_TTL,
                },
            })
            .await?;
        Ok(StartedOAuth {
            authorize_url,
            state,
        })
    }

    /// Finishes a sign-in: checks the state against the browser's cookie and
    /// the stored record (single use), exchanges the code, verifies the
    /// identity, then applies the linking rules.
    pub async fn oauth_callback(
        &self,
        provider: &str,
        params: CallbackParams,
        cookie_state: Option<&str>,
        client: &ClientInfo,
    ) -> AppResult<OAuthResult> {
        let state = params
            .state
            .as_deref()
            .filter(|s| crate::crypto::token::plausible_secret(s));
        let (Some(state), Some(cookie)) = (state, cookie_state) else {
            return Err(invalid_state());
        };
        if !constant_time_eq(state, cookie) {
            return Err(invalid_state());
        }
        let record = self
            .store
            .take_oauth_state(&hash_secret(state), self.clock.now())
            .await?
            .filter(|r| r.provider == provider)
            .ok_or_else(invalid_state)?;
        if let Some(error) = params.error {
            let error: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            return Err(sign_in_failed(&format!(
                "The provider did not sign you in ({error})."
            )));
        }
        let code = params
            .code
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or_else(|| sign_in_failed("The provider sent no authorization code."))?;
        let provider = self.provider(provider)?;
        let identity = match provider.kind {
            OAuthKind::Oidc => self.oidc_identity(&provider, &record, code).await?,
            OAuthKind::Github => self.github_identity(&provider, &record, code).await?,
        };
        if identity.subject.is_empty() {
            return Err(sign_in_failed("The provider did not identify the user."));
        }
        let redirect_to = Url::parse(&record.redirect_to).map_err(AppError::internal)?;
        match record.link_user_id {
            Some(user_id) => {
                self.link_identity_to(&provider, user_id, identity, client)
                    .await?;
                Ok(OAuthResult::Linked { redirect_to })
            }
            None => {
                let user = self.social_user(&provider, identity, client).await?;
                let outcome = self.finish_login(user, "oauth", client).await?;
                Ok(OAuthResult::SignedIn {
                    outcome: Box::new(outcome),
                    redirect_to,
                })
            }
        }
    }

    async fn oidc_identity(
        &self,
        provider: &Provider,
        record: &OAuthState,
        code: String,
    ) -> AppResult<ProviderIdentity> {
        let redirect_uri = Url::parse(&record.callback).map_err(AppError::internal)?;
        let client_for = |metadata: &CoreProviderMetadata| {
            CoreClient::from_provider_metadata(
                metadata.clone(),
                ClientId::new(provider.client_id.clone()),
                provider.client_secret.clone().map(ClientSecret::new),
            )
            .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()))
        };
        let metadata = self.metadata(&provider.issuer, false).await?;
        let client = client_for(&metadata);
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(AppError::internal)?
            .set_pkce_verifier(PkceCodeVerifier::new(record.pkce_verifier.clone()))
            .request_async(&self.oauth_http)
            .await
            .map_err(|err| {
                tracing::info!(provider = %provider.name, error = %err, "OAuth code exchange refused");
                sign_in_failed("The provider refused the sign-in; start again.")
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| sign_in_failed("The provider sent no ID token."))?;
        let nonce = Nonce::new(record.nonce.clone());
        let verify = |client: &CoreClient<_, _, _, _, _, _>| -> Result<CoreIdTokenClaims, ClaimsVerificationError> {
            id_token.claims(&client.id_token_verifier(), &nonce).cloned()
        };
        let claims = match verify(&client) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // The provider rotated its keys: fetch them again, once.
                let metadata = self.metadata(&provider.issuer, true).await?;
                verify(&client_for(&metadata))
            }
            other => other,
        }
        .map_err(|err| {
            tracing::info!(provider = %provider.name, error = %err, "ID token rejected");
            sign_in_failed("The provider's answer could not be verified.")
        })?;
        Ok(ProviderIdentity {
            issuer: claims.issuer().to_string(),
            subject: claims.subject().to_string(),
            email: claims.email().map(|e| e.to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
        })
    }

    async fn github_identity(
        &self,
        provider: &Provider,
        record: &OAuthState,
        code: String,
    ) -> AppResult<ProviderIdentity> {
        #[derive(Deserialize)]
        struct TokenAnswer {
            access_token: Option<String>,
        }
        #[derive(Deserialize)]
        struct GithubUser {
            id: i64,
            name: Option<String>,
        }
        #[derive(Deserialize)]
        struct GithubEmail {
            email: String,
            primary: bool,
            verified: bool,
        }
        let config = &provider.config;
        let token_url = config
            .token_url
            .as_deref()
            .unwrap_or("https://github.com/login/oauth/access_token");
        let api = config
            .api_url
            .as_deref()
            .unwrap_or("https://api.github.com")
            .trim_end_matches('/');
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", record.callback.clone()),
            ("client_id", provider.client_id.clone()),
            ("code_verifier", record.pkce_verifier.clone()),
        ];
        if let Some(secret) = &provider.client_secret {
            form.push(("client_secret", secret.clone()));
        }
        let answer: TokenAnswer = self
            .oauth_http
            .post(token_url)
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(provider_unreachable)?
            .json()
            .await
            .map_err(|_| sign_in_failed("The provider refused the sign-in; start again."))?;
        let access_token = answer
            .access_token
            .ok_or_else(|| sign_in_failed("The provider refused the sign-in; start again."))?;
        let get = |path: &str| {
            self.oauth_http
                .get(format!("{api}{path}"))
                .bearer_auth(&access_token)
                .header("accept", "application/vnd.github+json")
                .header("user-agent", "tessera")
        };
        let user: GithubUser = get("/user")
            .send()
            .await
            .map_err(provider_unreachable)?
            .error_for_status()
            .map_err(|_| sign_in_failed("The provider's user API refused the token."))?
            .json()
            .await
            .map_err(|_| sign_in_failed("The provider's user API answered nonsense."))?;
        let emails: Vec<GithubEmail> = get("/user/emails")
            .send()
            .await
            .map_err(provider_unreachable)?
            .error_for_status()
            .map_err(|_| sign_in_failed("The provider's email API refused the token."))?
            .json()
            .await
            .map_err(|_| sign_in_failed("The provider's email API answered nonsense."))?;
        let primary = emails.into_iter().find(|e| e.primary);
        Ok(ProviderIdentity {
            issuer: provider.issuer.clone(),
            subject: user.id.to_string(),
            email_verified: primary.as_ref().is_some_and(|e| e.verified),
            email: primary.map(|e| e.email),
            name: user.name,
        })
    }

    /// The account an identity signs in to, by the linking rules: the
    /// account it is already linked to; else, when the provider vouches for
    /// the email, the verified account with that address (linked now) or a
    /// new account (an unverified one holding the address is discarded).
    async fn social_user(
        &self,
        provider: &Provider,
        identity: ProviderIdentity,
        client: &ClientInfo,
    ) -> AppResult<User> {
        if let Some(user) = self.linked_user(&identity).await? {
            return Ok(user);
        }
        let email = vouched_email(provider, &identity)?;
        let vouched = VouchedIdentity {
            provider,
            identity,
            email,
            now: self.clock.now(),
        };
        match self.owner_of_address(&vouched.email, client).await? {
            Some(user) if user.email_verified_at.is_some() => {
                self.link_vouched(user, &vouched, client).await
            }
            // Verified or created again a moment ago, between the two looks.
            Some(_) => Err(AppError::conflict(
                "This account changed a moment ago; sign in again.",
            )),
            None => self.social_signup(&vouched, client).await,
        }
    }

    /// The account an identity was linked to before, when it was; an
    /// identity whose account has since been deleted is refused.
    async fn linked_user(&self, identity: &ProviderIdentity) -> AppResult<Option<User>> {
        let Some(known) = self
            .store
            .find_identity(&identity.issuer, &identity.subject)
            .await?
        else {
            return Ok(None);
        };
        self.store
            .find_user(known.user_id)
            .await?
            .map(Some)
            .ok_or_else(|| sign_in_failed("This account no longer exists."))
    }

    /// The account holding `email`, if any, once an unverified holder has
    /// been discarded: the provider proved the address, and whoever signed
    /// up with it without proving it loses the account (a password squatter
    /// must not inherit the owner's social sign-in).
    async fn owner_of_address(
        &self,
        email: &Email,
        client: &ClientInfo,
    ) -> AppResult<Option<User>> {
        Ok(match self.store.find_user_by_email(email.as_str()).await? {
            Some(user)
                if user.email_verified_at.is_none()
                    && self.take_over_unverified(email.as_str(), client).await? =>
            {
                None
            }
            other => other,
        })
    }

    /// Links a new identity to the verified account with its address, and
    /// audits the link.
    async fn link_vouched(
        &self,
        user: User,
        vouched: &VouchedIdentity<'_>,
        client: &ClientInfo,
    ) -> AppResult<User> {
        let provider = &vouched.provider.name;
        self.store
            .link_identity(&vouched.linked_to(user.id))
            .await
            .map_err(|e| link_conflict(e, provider))?;
        self.record_link(&user, provider, client).await;
        Ok(user)
    }

    /// Creates a verified, password-less account for a new identity, with
    /// its own tenant and the identity linked, in one transaction; audits
    /// the sign-up. A concurrent creation of the same account is `409`.
    async fn social_signup(
        &self,
        vouched: &VouchedIdentity<'_>,
        client: &ClientInfo,
    ) -> AppResult<User> {
        let (user, tenant) = vouched.new_account();
        let identity = vouched.linked_to(user.id);
        let user = self
            .store
            .create_user_with_identity(user, tenant, identity)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    AppError::conflict("This account was created a moment ago; sign in again.")
                }
                other => other.into(),
            })?;
        self.record(
            Audit::new(AuditAction::Signup)
                .actor(user.id)
                .target(user.id)
                .client(client)
                .detail(json!({"provider": vouched.provider.name})),
        )
        .await;
        Ok(user)
    }

    /// Links an identity to a signed-in user who asked for it.
    async fn link_identity_to(
        &self,
        provider: &Provider,
        user_id: Uuid,
        identity: ProviderIdentity,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let user = self
            .active_user(user_id)
            .await?
            .ok_or_else(AppError::unauthorized)?;
        Self::require_verified(&user)?;
        if let Some(known) = self
            .store
            .find_identity(&identity.issuer, &identity.subject)
            .await?
        {
            return if known.user_id == user.id {
                Ok(())
            } else {
                Err(AppError::conflict(format!(
                    "This {} account is linked to another account.",
                    provider.name
                )))
            };
        }
        self.store
            .link_identity(&NewIdentity {
                id: Uuid::new_v4(),
                user_id: user.id,
                provider: provider.name.clone(),
                issuer: identity.issuer,
                subject: identity.subject,
                email: identity.email,
                now: self.clock.now(),
            })
            .await
            .map_err(|e| link_conflict(e, &provider.name))?;
        self.record_link(&user, &provider.name, client).await;
        Ok(())
    }

    async fn record_link(&self, user: &User, provider: &str, client: &ClientInfo) {
        self.record(
            Audit::new(AuditAction::IdentityLink)
                .actor(user.id)
                .target(user.id)
                .client(client)
                .detail(json!({"provider": provider})),
        )
        .await;
    }

    pub async fn linked_accounts(&self, user: &User) -> AppResult<Vec<Identity>> {
        Ok(self.store.identities(user.id).await?)
    }

    /// Unlinks `provider`, unless the account would be left without a way to
    /// sign in (no password and no other provider).
    pub async fn unlink_provider(
        &self,
        user: &User,
        provider: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        match self.store.unlink_identity(user.id, provider).await? {
            UnlinkOutcome::Done => {
                self.record(
                    Audit::new(AuditAction::IdentityUnlink)
                        .actor(user.id)
                        .target(user.id)
                        .client(client)
                        .detail(json!({"provider": provider})),
                )
                .await;
                Ok(())
            }
            UnlinkOutcome::NotLinked => Err(AppError::not_found(format!(
                "No linked account for provider {provider:?}."
            ))),
            UnlinkOutcome::LastMethod => Err(AppError::conflict(
                "This is the only way to sign in to this account; set a password or link \
                 another provider first.",
            )),
        }
    }
}

fn link_conflict(err: StoreError, provider: &str) -> AppError {
    match err {
        StoreError::Conflict("provider") => AppError::conflict(format!(
            "This account is already linked to another {provider} account."
        )),
        StoreError::Conflict(_) => AppError::conflict(format!(
            "This {provider} account is linked to another account."
        )),
        other => other.into(),
    }
}

/// The identity's email, when the provider shared a usable one and says it
/// verified it: only then may the identity sign up or join an account by
/// address. The missing address is named before the unverified one.
fn vouched_email(provider: &Provider, identity: &ProviderIdentity) -> AppResult<Email> {
    let email = identity
        .email
        .as_deref()
        .and_then(|e| Email::parse(e).ok())
        .ok_or_else(|| sign_in_failed("The provider did not share a usable email address."))?;
    if !identity.email_verified {
        return Err(AppError::forbidden(format!(
            "{} has not verified this email address; verify it there, or sign up with a password.",
            provider.name
        )));
    }
    Ok(email)
}

/// A new identity whose provider vouched for its email address (see
/// [`vouched_email`]), seen at `now`.
struct VouchedIdentity<'a> {
    provider: &'a Provider,
    identity: ProviderIdentity,
    email: Email,
    now: DateTime<Utc>,
}

impl VouchedIdentity<'_> {
    /// The identity as linked to `user_id`.
    fn linked_to(&self, user_id: Uuid) -> NewIdentity {
        NewIdentity {
            id: Uuid::new_v4(),
            user_id,
            provider: self.provider.name.clone(),
            issuer: self.identity.issuer.clone(),
            subject: self.identity.subject.clone(),
            email: Some(self.email.as_str().to_owned()),
            now: self.now,
        }
    }

    /// The account a first sign-in creates: verified (the provider proved
    /// the address), without a password, named as the provider names the
    /// person when that name is usable (else left unnamed), with a
    /// workspace named after the person or the address.
    fn new_account(&self) -> (NewUser, NewTenant) {
        let name = self
            .identity
            .name
            .as_deref()
            .and_then(|n| crate::domain::clean_text(Some(n), 200).ok().flatten());
        let tenant_name = format!(
            "{}'s workspace",
            name.as_deref().unwrap_or(self.email.local_part())
        );
        let user = NewUser {
            id: Uuid::new_v4(),
            email: self.email.as_str().to_owned(),
            password_hash: None,
            name,
            first_name: None,
            last_name: None,
            email_verified: true,
            is_admin: false,
            now: self.now,
        };
        let tenant = NewTenant {
            id: Uuid::new_v4(),
            slug: super::accounts::slugify(&tenant_name),
            name: tenant_name,
        };
        (user, tenant)
    }
}
