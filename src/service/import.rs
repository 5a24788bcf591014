//! `tessera users import`: users with their existing password hashes.

use serde::Deserialize;
use uuid::Uuid;

use super::Tessera;
use crate::domain::{self, Email, Role};
use crate::store::{NewTenant, NewUser, StoreError};

/// One JSON line of an import file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportLine {
    pub email: String,
    /// argon2 PHC, bcrypt (`$2a$`/`$2b$`/`$2y$`), or unsalted SHA-256 hex.
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    /// Tenants to join, by name (created on first mention); when absent the
    /// user gets an own tenant, as at sign-up.
    pub tenants: Option<Vec<ImportTenant>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportTenant {
    pub name: String,
    pub role: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: usize,
    /// Already present (so re-running an import is safe).
    pub skipped: usize,
    /// (line number, reason)
    pub bad: Vec<(usize, String)>,
}

fn known_hash(hash: &str) -> bool {
    hash.starts_with("$argon2")
        || ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) && hash.len() == 60
        || hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The slug an imported tenant name maps to: stable, so that users naming
/// the same tenant join one tenant, across runs too.
fn import_slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    format!("import-{}", slug.trim_end_matches('-'))
}

impl Tessera {
    /// Imports JSON lines; a bad line is reported and never stops the rest.
    pub async fn import_users(&self, text: &str) -> ImportReport {
        let mut report = ImportReport::default();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            if line.trim().is_empty() {
                continue;
            }
            match self.import_line(line).await {
                Ok(true) => report.imported += 1,
                Ok(false) => report.skipped += 1,
                Err(reason) => report.bad.push((number, reason)),
            }
        }
        if report.imported > 0 {
            // New kinds of hash may have come in: a server that imported
            // pads failed logins to them at once.
            self.learn_password_hash_costs().await;
        }
        report
    }

    async fn import_line(&self, line: &str) -> Result<bool, String> {
        let parsed: ImportLine =
            serde_json::from_str(line).map_err(|e| format!("not a valid user: {e}"))?;
        let email = Email::parse(&parsed.email).map_err(|r| format!("email {r}"))?;
        if let Some(hash) = &parsed.password_hash {
            if !known_hash(hash) {
                return Err("password_hash is not argon2, bcrypt or SHA-256 hex".into());
            }
            // A hash costlier than a login may spend would never verify,
            // and would slow every failed login down to its cost.
            if let Some(reason) = self.hasher.refusal(hash) {
                return Err(reason);
            }
        }
        let text = |field: &str, v: &Option<String>| {
            domain::clean_text(v.as_deref(), 200).map_err(|r| format!("{field} {r}"))
        };
        let (name, first_name, last_name) = (
            text("name", &parsed.name)?,
            text("first_name", &parsed.first_name)?,
            text("last_name", &parsed.last_name)?,
        );
        let mut tenants = Vec::new();
        match &parsed.tenants {
            Some(list) => {
                for t in list {
                    let role = Role::parse(&t.role).ok_or_else(|| {
                        format!("role {:?} is not owner, admin or member", t.role)
                    })?;
                    let tenant_name = text("tenant name", &Some(t.name.clone()))?
                        .ok_or("a tenant has no name")?;
                    let slug = import_slug(&tenant_name);
                    tenants.push((
                        NewTenant {
                            id: Uuid::new_v4(),
                            name: tenant_name,
                            slug,
                        },
                        role,
                    ));
                }
            }
            None => {
                let tenant_name = format!(
                    "{}'s workspace",
                    name.as_deref().unwrap_or(email.local_part())
                );
                tenants.push((
                    NewTenant {
                        id: Uuid::new_v4(),
                        slug: super::accounts::slugify(&tenant_name),
                        name: tenant_name,
                    },
                    Role::Owner,
                ));
            }
        }
        let user = NewUser {
            id: Uuid::new_v4(),
            email: email.as_str().to_owned(),
            password_hash: parsed.password_hash,
            name,
            first_name,
            last_name,
            email_verified: parsed.email_verified,
            is_admin: false,
            now: self.clock.now(),
        };
        match self.store.import_user(user, tenants).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict("email")) => Ok(false),
            Err(other) => Err(format!("could not be stored: {other}")),
        }
    }
}
