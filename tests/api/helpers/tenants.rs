//! Tenants and invitations through `/api/v1`, as a signed-in client.

use std::time::Duration;

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};

use super::{body, me, Mail, TestApp};

impl TestApp {
    /// Creates a tenant named `name` as `client` (asserted `201`); returns
    /// the tenant as answered.
    pub async fn create_tenant_json(&self, client: &Client, name: &str) -> Value {
        let res = self
            .write(
                client,
                Method::POST,
                "/api/v1/tenants",
                Some(json!({"name": name})),
            )
            .await;
        body(res, StatusCode::CREATED).await
    }

    /// Creates a tenant named `name` as `client` (asserted `201`); returns
    /// its id.
    pub async fn create_tenant(&self, client: &Client, name: &str) -> String {
        self.create_tenant_json(client, name).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The id of the tenant `client`'s session is in (`me.tenant.id`).
    pub async fn current_tenant_id(&self, client: &Client) -> String {
        me(self, client).await["tenant"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Asks to invite `email` into `tenant_id` with `role`, as `inviter`;
    /// the answer as it comes.
    pub async fn send_invite(
        &self,
        inviter: &Client,
        tenant_id: &str,
        email: &str,
        role: &str,
    ) -> Response {
        self.write(
            inviter,
            Method::POST,
            &format!("/api/v1/tenants/{tenant_id}/invites"),
            Some(json!({"email": email, "role": role})),
        )
        .await
    }

    /// Invites `email` (an address not invited before) into `tenant_id`
    /// with `role`, as `inviter` (asserted `201`); returns the token of the
    /// mailed invitation.
    pub async fn invite(
        &self,
        inviter: &Client,
        tenant_id: &str,
        email: &str,
        role: &str,
    ) -> String {
        let res = self.send_invite(inviter, tenant_id, email, role).await;
        body(res, StatusCode::CREATED).await;
        self.invitation_mail(email, 1).await.token()
    }

    /// Waits for the `nth` invitation mail (1-based) sent to `email`; other
    /// mail to the address (its verification link) is not counted.
    pub async fn invitation_mail(&self, email: &str, nth: usize) -> Mail {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mails: Vec<Mail> = self
                .mail
                .to(email)
                .into_iter()
                .filter(|m| m.subject().contains("invited you"))
                .collect();
            if mails.len() >= nth {
                return mails[nth - 1].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no invitation #{nth} for {email} within 30 s (have {})",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Accepts the invitation `token` as `client`; the answer as it comes.
    pub async fn accept_invite(&self, client: &Client, token: &str) -> Response {
        self.write(
            client,
            Method::POST,
            "/api/v1/invites/accept",
            Some(json!({"invite_token": token})),
        )
        .await
    }
}
