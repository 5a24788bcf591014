//! Sign-up, email verification, and password recovery and change.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use serde_json::json;

use super::audit::{Audit, AuditAction};
use super::{ClientInfo, MailLink, Tessera};
use crate::crypto::token::{self, hash_secret};
use crate::domain::{self, Email, NewPassword};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::mail::templates;
use crate::store::{
    Invite, NewMail, NewOneTimeToken, NewTenant, NewUser, Profile, Session, StoreError, TokenMail,
    TokenPurpose, User,
};

pub const RESET_TTL: Duration = Duration::hours(1);
pub const VERIFY_TTL: Duration = Duration::hours(24);
const NAME_MAX: usize = 200;

#[derive(Debug, Default)]
pub struct SignupInput {
    pub email: String,
    pub password: String,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub tenant_name: Option<String>,
    pub invite_token: Option<String>,
    /// Create the account without signing in (dashboard sign-up).
    pub without_session: bool,
    /// Where the verification link lands once the address is verified
    /// (Better Auth's `callbackURL`), already checked against the allowlist.
    pub verify_callback: Option<url::Url>,
}

pub struct SignupOutcome {
    pub user: User,
    /// `None` when `auth.require_verified_email` holds back the session.
    pub session: Option<(String, Session)>,
}

/// Why an invite token was refused, whatever the reason.
const INVITE_UNUSABLE: &str = "is invalid, expired or already used";

/// An invitation a sign-up accepts, with its token's hash (which the store
/// spends as the account is created).
struct SignupInvite {
    hash: Vec<u8>,
    invite: Invite,
}

/// The names a sign-up may give, each optional: trimmed, at most
/// [`NAME_MAX`] characters, no control characters.
struct SignupNames {
    name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    tenant_name: Option<String>,
}

impl SignupNames {
    /// The names as given; each wrong one is named in `errors` (with its
    /// reason) and left out.
    fn parse(input: &SignupInput, errors: &mut FieldErrors) -> SignupNames {
        let mut text = |field: &str, value: &Option<String>| {
            domain::clean_text(value.as_deref(), NAME_MAX)
                .map_err(|reason| errors.insert(field.into(), reason))
                .ok()
                .flatten()
        };
        SignupNames {
            name: text("name", &input.name),
            first_name: text("first_name", &input.first_name),
            last_name: text("last_name", &input.last_name),
            tenant_name: text("tenant_name", &input.tenant_name),
        }
    }

    /// The name the account goes by: the one given, else the first and
    /// last names joined, else none.
    fn display_name(&self) -> Option<String> {
        self.name.clone().or_else(|| {
            let full = [self.first_name.as_deref(), self.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (!full.is_empty()).then_some(full)
        })
    }

    /// The name of the account's own tenant: the one given, else
    /// "<name>'s workspace" after the account's name or, lacking one, the
    /// address's local part.
    fn workspace_name(&self, display_name: Option<&str>, email: &Email) -> String {
        self.tenant_name
            .clone()
            .or_else(|| display_name.map(|n| format!("{n}'s workspace")))
            .unwrap_or_else(|| format!("{}'s workspace", email.local_part()))
    }
}

/// A [`SignupInput`] whose every field checked out.
struct SignupForm {
    email: Email,
    password: NewPassword,
    names: SignupNames,
    invite: Option<SignupInvite>,
    without_session: bool,
    verify_callback: Option<url::Url>,
}

impl SignupForm {
    /// The account to store, hashed password given, and the name of the
    /// tenant it gets when it does not join an invitation's. An invited
    /// address is verified already: the invitation's link reached it.
    fn new_user(&self, password_hash: String, now: DateTime<Utc>) -> (NewUser, String) {
        let name = self.names.display_name();
        let tenant_name = self.names.workspace_name(name.as_deref(), &self.email);
        let user = NewUser {
            id: Uuid::new_v4(),
            email: self.email.as_str().to_owned(),
            password_hash: Some(password_hash),
            name,
            first_name: self.names.first_name.clone(),
            last_name: self.names.last_name.clone(),
            // The invite link reached this address: it is proven.
            email_verified: self.invite.is_some(),
            is_admin: false,
            now,
        };
        (user, tenant_name)
    }
}

/// A URL-safe slug from a name, with a random suffix so it is unique.
pub(super) fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let base = if slug.is_empty() { "workspace" } else { slug };
    format!("{base}-{}", token::short_id())
}

impl Tessera {
    /// A token and its mail. For a reset, `page` (an allowed address) is
    /// the app's own page and the link is `page?token=…`; for a
    /// verification, it is where the link lands afterwards (`callbackURL`).
    /// Without it, the configured link.
    fn token_mail_to(
        &self,
        user_id: Uuid,
        email: &str,
        purpose: TokenPurpose,
        page: Option<&url::Url>,
    ) -> (String, TokenMail) {
        let now = self.clock.now();
        let secret = token::random_secret();
        let (ttl, kind, rendered): (
            Duration,
            MailLink,
            fn(&str, Duration) -> templates::Rendered,
        ) = match purpose {
            TokenPurpose::PasswordReset => (
                RESET_TTL,
                MailLink::ResetPassword,
                templates::reset_password,
            ),
            TokenPurpose::EmailVerification => {
                (VERIFY_TTL, MailLink::VerifyEmail, templates::verify_email)
            }
        };
        let link = match (page, purpose) {
            (Some(page), TokenPurpose::PasswordReset) => {
                let mut link = page.clone();
                link.query_pairs_mut().append_pair("token", &secret);
                link.to_string()
            }
            // A verification link carries where to land afterwards.
            (Some(callback), TokenPurpose::EmailVerification) => {
                let base = self.mail_link(kind, &secret);
                let pairs = form_urlencoded::Serializer::new(String::new())
                    .append_pair("callbackURL", callback.as_str())
                    .finish();
                let glue = if base.contains('?') { '&' } else { '?' };
                format!("{base}{glue}{pairs}")
            }
            (None, _) => self.mail_link(kind, &secret),
        };
        let message = rendered(&link, ttl);
        let token_mail = TokenMail {
            token: NewOneTimeToken {
                id: Uuid::new_v4(),
                user_id,
                purpose,
                token_hash: hash_secret(&secret),
                now,
                expires_at: now + ttl,
            },
            mail: NewMail {
                id: Uuid::new_v4(),
                recipient: email.to_owned(),
                subject: message.subject,
                body_text: message.body,
                now,
            },
        };
        (secret, token_mail)
    }

    /// Creates an account and its own tenant (role owner), queues the
    /// verification mail in the same transaction, and starts a session
    /// unless verified emails are required.
    pub async fn signup(
        &self,
        input: SignupInput,
        client: &ClientInfo,
    ) -> AppResult<SignupOutcome> {
        let form = self.signup_form(input).await?;
        let hash = self.hash_new_password(&form.password, "password").await?;
        let (new_user, tenant_name) = form.new_user(hash, self.clock.now());
        let user = self
            .create_signup_user(new_user, tenant_name, &form, client)
            .await?;
        self.record(
            Audit::new(AuditAction::Signup)
                .actor(user.id)
                .target(user.id)
                .client(client)
                .detail(json!({"invited": form.invite.is_some()})),
        )
        .await;
        let session = self
            .signup_session(&user, form.without_session, client)
            .await?;
        Ok(SignupOutcome { user, session })
    }

    /// Checks every field of a sign-up and answers `422` naming each wrong
    /// one at once. An invite token is looked up first: the invitation's
    /// address stands in for a blank email and must match a given one. The
    /// password is checked only once the email is valid (the policy refuses
    /// a password made of the address).
    async fn signup_form(&self, input: SignupInput) -> AppResult<SignupForm> {
        let mut errors = FieldErrors::new();
        let invite = self
            .signup_invite(input.invite_token.as_deref(), &mut errors)
            .await?;
        let raw_email = match &invite {
            Some(invite) if input.email.trim().is_empty() => invite.invite.email.as_str(),
            _ => input.email.as_str(),
        };
        let email = Email::parse(raw_email)
            .map_err(|reason| errors.insert("email".into(), reason))
            .ok();
        if let (Some(email), Some(invite)) = (&email, &invite) {
            if email.as_str() != invite.invite.email {
                errors.insert("invite_token".into(), "was sent to another address".into());
            }
        }
        let names = SignupNames::parse(&input, &mut errors);
        let password = email.as_ref().and_then(|email| {
            NewPassword::parse(&input.password, email)
                .map_err(|e| errors.insert("password".into(), e.reason()))
                .ok()
        });
        let (Some(email), Some(password), true) = (email, password, errors.is_empty()) else {
            return Err(AppError::fields(errors));
        };
        Ok(SignupForm {
            email,
            password,
            names,
            invite,
            without_session: input.without_session,
            verify_callback: input.verify_callback,
        })
    }

    /// The invitation an invite token accepts (it joins the inviting
    /// tenant; its address is the account's). No token (or a blank one) is
    /// `None`; one too long to be a token, or unknown, expired or used, is
    /// named in `errors` and also `None`.
    async fn signup_invite(
        &self,
        token: Option<&str>,
        errors: &mut FieldErrors,
    ) -> AppResult<Option<SignupInvite>> {
        let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        if token.len() <= token::MAX_SECRET_LEN {
            let hash = hash_secret(token);
            if let Some(invite) = self.store.find_invite(&hash, self.clock.now()).await? {
                return Ok(Some(SignupInvite { hash, invite }));
            }
        }
        errors.insert("invite_token".into(), INVITE_UNUSABLE.into());
        Ok(None)
    }

    /// Stores the new account. An address whose account was never verified
    /// is not owned yet: a new sign-up takes it over (the old account and
    /// what it made are discarded) and answers exactly as a fresh one.
    /// Twice at most, in case another sign-up for the address lands in
    /// between.
    async fn create_signup_user(
        &self,
        new_user: NewUser,
        tenant_name: String,
        form: &SignupForm,
        client: &ClientInfo,
    ) -> AppResult<User> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self
                .insert_signup_user(new_user.clone(), &tenant_name, form)
                .await
            {
                Err(err)
                    if err.code == crate::error::ErrorCode::UserExists
                        && tries <= 2
                        && self
                            .take_over_unverified(form.email.as_str(), client)
                            .await? => {}
                other => return other,
            }
        }
    }

    /// One attempt at storing the account: joining the invitation's tenant,
    /// else with its own tenant and the verification mail. A taken address
    /// is `409 USER_EXISTS`, the only answer the caller retries; an
    /// invitation spent in the meantime is `422` on `invite_token`.
    async fn insert_signup_user(
        &self,
        new_user: NewUser,
        tenant_name: &str,
        form: &SignupForm,
    ) -> AppResult<User> {
        let Some(invite) = &form.invite else {
            let verification = Some(form.verify_callback.as_ref());
            return self
                .create_account(new_user, tenant_name.to_owned(), verification)
                .await;
        };
        match self
            .store
            .create_user_with_invite(new_user, &invite.hash)
            .await
        {
            Ok(Some(user)) => Ok(user),
            Ok(None) => Err(AppError::field("invite_token", INVITE_UNUSABLE)),
            Err(StoreError::Conflict("email")) => Err(Self::user_exists()),
            Err(other) => Err(other.into()),
        }
    }

    /// The session a sign-up starts: none when `auth.require_verified_email`
    /// holds it back or the caller asked for none.
    async fn signup_session(
        &self,
        user: &User,
        without_session: bool,
        client: &ClientInfo,
    ) -> AppResult<Option<(String, Session)>> {
        if self.config.auth.require_verified_email || without_session {
            return Ok(None);
        }
        match self.start_session(user, None, client).await {
            Ok(session) => Ok(Some(session)),
            // A sign-up for the same unverified address took it over
            // between our insert and this session: it is theirs now.
            Err(err) if err.code == crate::error::ErrorCode::NotFound => Err(Self::user_exists()),
            Err(err) => Err(err),
        }
    }

    /// Dashboard sign-up (`/auth`): creates an unverified account without a
    /// session. Signing up again with an unverified email takes the address
    /// over as any sign-up does (a new verification mail, the old links
    /// dead) and answers as a new sign-up; a verified one is
    /// `409 USER_EXISTS`.
    pub async fn signup_unverified(
        self: &Arc<Self>,
        input: SignupInput,
        client: &ClientInfo,
    ) -> AppResult<User> {
        let input = SignupInput {
            without_session: true,
            ..input
        };
        Ok(self.signup(input, client).await?.user)
    }

    /// Discards the account of `email` when its address was never
    /// verified, with everything it made (see
    /// `Store::discard_unverified_user`): whoever held the address without
    /// proving it keeps no session, token, tenant or invitation once
    /// someone else claims it. `false` when there is no such account.
    pub(super) async fn take_over_unverified(
        &self,
        email: &str,
        client: &ClientInfo,
    ) -> AppResult<bool> {
        let Some(old) = self.store.find_user_by_email(email).await? else {
            // Gone since the conflict: the address is free again.
            return Ok(true);
        };
        if old.email_verified_at.is_some()
            || !self
                .store
                .discard_unverified_user(old.id, self.clock.now())
                .await?
        {
            return Ok(false);
        }
        self.record(
            Audit::new(AuditAction::AccountDiscarded)
                .target(old.id)
                .client(client)
                .detail(json!({"reason": "unverified address claimed again"})),
        )
        .await;
        Ok(true)
    }

    /// Verifies the email and finishes the account: pending invitations to
    /// the address are accepted.
    pub async fn verify_email_and_join(&self, token: &str) -> AppResult<User> {
        let user = self.verify_email(token).await?;
        self.store
            .accept_invites_for_email(user.id, &user.email, self.clock.now())
            .await?;
        Ok(user)
    }

    /// Queues a reset link when the email belongs to an active account.
    pub fn forgot_password(self: &Arc<Self>, email: &str) -> AppResult<()> {
        self.mail_token_later(email, TokenPurpose::PasswordReset, None)
    }

    /// `forgot_password` whose link points at the app's own reset page
    /// (Better Auth's `redirectTo`): an address on the redirect allowlist,
    /// else `422` on `field` before anything is looked up.
    pub fn forgot_password_to(
        self: &Arc<Self>,
        email: &str,
        page: &str,
        field: &str,
    ) -> AppResult<()> {
        let page = self
            .redirect_target(page)
            .ok_or_else(|| AppError::field(field, "is not an allowed address"))?;
        self.mail_token_later(email, TokenPurpose::PasswordReset, Some(page))
    }

    /// Queues a new verification link when the email belongs to an account
    /// not verified yet.
    pub fn resend_verification(self: &Arc<Self>, email: &str) -> AppResult<()> {
        self.mail_token_later(email, TokenPurpose::EmailVerification, None)
    }

    /// Answers the same, in the same time, whether or not the email has an
    /// account: the lookup and the mail happen after the answer.
    fn mail_token_later(
        self: &Arc<Self>,
        email: &str,
        purpose: TokenPurpose,
        page: Option<url::Url>,
    ) -> AppResult<()> {
        let email = Email::parse(email).map_err(|reason| AppError::field("email", reason))?;
        let core = Arc::clone(self);
        self.tasks.spawn(async move {
            let result: AppResult<()> = async {
                let Some(user) = core.store.find_user_by_email(email.as_str()).await? else {
                    return Ok(());
                };
                let already_verified =
                    purpose == TokenPurpose::EmailVerification && user.email_verified_at.is_some();
                if user.disabled_at.is_some() || already_verified {
                    return Ok(());
                }
                let (_, token_mail) =
                    core.token_mail_to(user.id, &user.email, purpose, page.as_ref());
                let cap = core.config.security.mail_per_address_per_hour;
                if core.store.issue_token(token_mail, cap).await? {
                    core.mail_wake.notify_one();
                } else {
                    tracing::warn!(
                        purpose = purpose.as_str(),
                        "mail cap for one address reached; nothing sent"
                    );
                }
                Ok(())
            }
            .await;
            if let Err(err) = result {
                tracing::error!(purpose = purpose.as_str(), error = %err, source = ?err.source,
                    "queueing a token mail failed");
            }
        });
        Ok(())
    }

    fn invalid_token() -> AppError {
        AppError::field("token", "is invalid, expired or already used")
    }

    fn parse_token(raw: &str) -> AppResult<&str> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(AppError::field("token", "is required"));
        }
        if raw.len() > token::MAX_SECRET_LEN {
            return Err(Self::invalid_token());
        }
        Ok(raw)
    }

    /// Sets a new password with a reset token (single use, 1 hour) and
    /// revokes every session of the account.
    pub async fn reset_password(
        &self,
        token: &str,
        password: &str,
        client: &ClientInfo,
    ) -> AppResult<User> {
        let hash = hash_secret(Self::parse_token(token)?);
        let now = self.clock.now();
        let user_id = self
            .store
            .peek_token(TokenPurpose::PasswordReset, &hash, now)
            .await?
            .ok_or_else(Self::invalid_token)?;
        let user = self
            .store
            .find_user(user_id)
            .await?
            .ok_or_else(Self::invalid_token)?;
        let email = Email::parse(&user.email).map_err(|_| Self::invalid_token())?;
        let password = NewPassword::parse(password, &email)
            .map_err(|e| AppError::field("password", e.reason()))?;
        let password_hash = self.hash_new_password(&password, "password").await?;
        if user.email_verified_at.is_none() {
            // The link proves the address of an account that never proved
            // it: whoever made that account may not be its owner, so the
            // owner starts afresh rather than inherit its tenants and
            // invitations. Discarding also spends the token.
            if !self
                .store
                .discard_unverified_user(user.id, self.clock.now())
                .await?
            {
                return Err(Self::invalid_token());
            }
            let fresh = NewUser {
                id: Uuid::new_v4(),
                email: user.email.clone(),
                password_hash: Some(password_hash),
                name: None,
                first_name: None,
                last_name: None,
                email_verified: true,
                is_admin: false,
                now: self.clock.now(),
            };
            let tenant_name = format!("{}'s workspace", email.local_part());
            let fresh = self.create_account(fresh, tenant_name, None).await?;
            self.store.clear_login_failures(&fresh.email).await?;
            self.record(
                Audit::new(AuditAction::PasswordReset)
                    .target(fresh.id)
                    .client(client)
                    .detail(json!({"unverified_account_replaced": user.id})),
            )
            .await;
            return Ok(fresh);
        }
        self.store
            .redeem_reset_token(&hash, &password_hash, self.clock.now())
            .await?
            .ok_or_else(Self::invalid_token)?;
        // A completed reset also lifts a lockout of the address.
        self.store.clear_login_failures(&user.email).await?;
        self.record(
            Audit::new(AuditAction::PasswordReset)
                .target(user.id)
                .client(client),
        )
        .await;
        Ok(user)
    }

    /// Whether a reset token can still be used (a page asks before showing
    /// its form); nothing is spent.
    pub async fn reset_token_usable(&self, token: &str) -> AppResult<bool> {
        self.token_usable(TokenPurpose::PasswordReset, token).await
    }

    /// Whether a verification token can still be used (the mailed link's
    /// page asks before showing its button); nothing is spent.
    pub async fn verification_token_usable(&self, token: &str) -> AppResult<bool> {
        self.token_usable(TokenPurpose::EmailVerification, token)
            .await
    }

    async fn token_usable(&self, purpose: TokenPurpose, token: &str) -> AppResult<bool> {
        let Ok(token) = Self::parse_token(token) else {
            return Ok(false);
        };
        Ok(self
            .store
            .peek_token(purpose, &hash_secret(token), self.clock.now())
            .await?
            .is_some())
    }

    /// Sets the names the user goes by. Each field sent replaces the old
    /// value (an empty one clears it); fields not sent stay as they are.
    pub async fn update_profile(
        &self,
        user: &User,
        name: Option<&str>,
        first_name: Option<&str>,
        last_name: Option<&str>,
        client: &ClientInfo,
    ) -> AppResult<User> {
        let mut errors = FieldErrors::new();
        let mut field = |key: &str, sent: Option<&str>, old: &Option<String>| match sent {
            None => old.clone(),
            Some(value) => domain::clean_text(Some(value), NAME_MAX)
                .map_err(|reason| errors.insert(key.into(), reason))
                .ok()
                .flatten(),
        };
        let profile = Profile {
            name: field("name", name, &user.name),
            first_name: field("first_name", first_name, &user.first_name),
            last_name: field("last_name", last_name, &user.last_name),
        };
        if !errors.is_empty() {
            return Err(AppError::fields(errors));
        }
        let updated = self
            .store
            .update_profile(user.id, &profile, self.clock.now())
            .await?
            .ok_or_else(AppError::unauthorized)?;
        self.record(
            Audit::new(AuditAction::UserUpdate)
                .actor(user.id)
                .target(user.id)
                .client(client)
                .detail(json!({"profile": true})),
        )
        .await;
        Ok(updated)
    }

    /// Marks the email verified with a verification token (single use, 24 hours).
    pub async fn verify_email(&self, token: &str) -> AppResult<User> {
        let hash = hash_secret(Self::parse_token(token)?);
        self.store
            .redeem_verification_token(&hash, self.clock.now())
            .await?
            .ok_or_else(Self::invalid_token)
    }

    /// Changes the password after checking the current one; every other
    /// session of the account is revoked.
    pub async fn change_password(
        &self,
        user: &User,
        current_session: Option<Uuid>,
        current_password: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        Self::current_password_shape(current_password, "current_password")?;
        let new_password = Self::new_password_for(user, new_password)?;
        self.check_current_password(user, current_password, "current_password", client)
            .await?;
        self.store_password(
            user,
            &new_password,
            current_session,
            AuditAction::PasswordChange,
            client,
        )
        .await
    }

    /// The cheap checks of a current password as sent (before any hashing).
    fn current_password_shape(password: &str, field: &str) -> AppResult<()> {
        if password.is_empty() {
            return Err(AppError::field(field, "is required"));
        }
        if password.chars().count() > domain::PASSWORD_MAX_CHARS {
            return Err(AppError::field(field, "is incorrect"));
        }
        Ok(())
    }

    /// Re-checks the password of a signed-in user before a sensitive
    /// change; a wrong one is `VALIDATION_FAILED` on `field`. Each check
    /// spends the client's per-IP credential budget and, counted before it
    /// is checked, the account's lockout budget: a stolen session is no way
    /// around the lockout.
    pub(super) async fn check_current_password(
        &self,
        user: &User,
        password: &str,
        field: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        Self::current_password_shape(password, field)?;
        self.limit_credentials(client.addr).await?;
        let budget = self.email_budget(&user.email);
        let attempt = self.spend_attempt(&budget).await?;
        let verdict = self
            .hasher
            .verify(
                &domain::normalize_password(password),
                user.password_hash.as_deref(),
            )
            .await
            .map_err(AppError::internal)?;
        if !verdict.matched() {
            self.login_failed(&user.email, Some(user.id), &budget, attempt, client)
                .await;
            return Err(AppError::field(field, "is incorrect"));
        }
        self.refund_attempt(&budget).await
    }

    /// A new password for `user`, checked against the policy.
    fn new_password_for(user: &User, raw: &str) -> AppResult<NewPassword> {
        let email = Email::parse(&user.email)
            .map_err(|e| AppError::internal(anyhow::anyhow!("stored email is invalid: {e}")))?;
        NewPassword::parse(raw, &email).map_err(|e| AppError::field("new_password", e.reason()))
    }

    /// Stores a new password, revokes every other session, records `action`.
    async fn store_password(
        &self,
        user: &User,
        password: &NewPassword,
        keep: Option<Uuid>,
        action: AuditAction,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let hash = self.hash_new_password(password, "new_password").await?;
        self.store
            .change_password(user.id, &hash, keep, self.clock.now())
            .await?;
        self.record(
            Audit::new(action)
                .actor(user.id)
                .target(user.id)
                .client(client),
        )
        .await;
        Ok(())
    }

    /// Sets a first password on an account that has none (social sign-in).
    pub async fn set_password(
        &self,
        user: &User,
        current_session: Option<Uuid>,
        new_password: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let new_password = Self::new_password_for(user, new_password)?;
        if user.password_hash.is_some() {
            return Err(AppError::conflict(
                "This account already has a password; use change-password.",
            ));
        }
        self.store_password(
            user,
            &new_password,
            current_session,
            AuditAction::PasswordSet,
            client,
        )
        .await
    }

    /// Creates an account from the command line (optionally a global admin),
    /// already verified, with its own tenant.
    pub async fn create_user_cli(
        &self,
        email: &str,
        password: &str,
        admin: bool,
    ) -> AppResult<User> {
        let email = Email::parse(email).map_err(|reason| AppError::field("email", reason))?;
        let password = NewPassword::parse(password, &email)
            .map_err(|e| AppError::field("password", e.reason()))?;
        let hash = self.hash_new_password(&password, "password").await?;
        let tenant_name = format!("{}'s workspace", email.local_part());
        let user = NewUser {
            id: Uuid::new_v4(),
            email: email.as_str().to_owned(),
            password_hash: Some(hash),
            name: None,
            first_name: None,
            last_name: None,
            email_verified: true,
            is_admin: admin,
            now: self.clock.now(),
        };
        self.create_account(user, tenant_name, None).await
    }

    /// Stores a new account with its own tenant and, when asked
    /// (`Some(landing after verifying)`), the verification mail, in one
    /// transaction.
    async fn create_account(
        &self,
        user: NewUser,
        tenant_name: String,
        verification: Option<Option<&url::Url>>,
    ) -> AppResult<User> {
        let send_verification = verification.is_some();
        let tenant = NewTenant {
            id: Uuid::new_v4(),
            slug: slugify(&tenant_name),
            name: tenant_name,
        };
        let verification = verification.map(|callback| {
            self.token_mail_to(
                user.id,
                &user.email,
                TokenPurpose::EmailVerification,
                callback,
            )
            .1
        });
        match self
            .store
            .create_user_with_tenant(user, tenant, verification)
            .await
        {
            Ok(user) => {
                if send_verification {
                    self.mail_wake.notify_one();
                }
                Ok(user)
            }
            Err(StoreError::Conflict("email")) => Err(Self::user_exists()),
            Err(other) => Err(other.into()),
        }
    }

    fn user_exists() -> AppError {
        AppError::new(
            crate::error::ErrorCode::UserExists,
            "An account with this email already exists.",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs_are_url_safe_and_unique() {
        let a = slugify("Alice's Team — Ünïcode!");
        assert!(a.starts_with("alice-s-team-"), "{a}");
        assert!(a
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert_ne!(slugify("x"), slugify("x"));
        assert!(slugify("!!!").starts_with("workspace-"));
    }
}
