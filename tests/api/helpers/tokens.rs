//! Credentials other than the session cookie: personal access tokens,
//! access JWTs, and requests made with them.

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};

use super::{body, TestApp};

/// The claims of a JWT, unverified (a test only reads them).
pub fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

impl TestApp {
    /// Creates a personal access token as `client` from `request` (`name`,
    /// `scopes`, ...; asserted `201`); returns the answer, secret included.
    pub async fn create_pat(&self, client: &Client, request: Value) -> Value {
        let res = self
            .write(client, Method::POST, "/api/v1/tokens", Some(request))
            .await;
        body(res, StatusCode::CREATED).await
    }

    /// A new personal access token of `client`'s, named `name`, with
    /// `scopes`: its secret.
    pub async fn pat(&self, client: &Client, name: &str, scopes: &[&str]) -> String {
        self.create_pat(client, json!({"name": name, "scopes": scopes}))
            .await["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// An access JWT for `client`'s session (`POST /api/v1/auth/token` with
    /// the cookie and the CSRF token; asserted `200`).
    pub async fn jwt(&self, client: &Client) -> String {
        let res = self
            .write(client, Method::POST, "/api/v1/auth/token", None)
            .await;
        body(res, StatusCode::OK).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// An access JWT exchanged for the bearer credential `token` (a personal
    /// access token; asserted `200`).
    pub async fn exchange(&self, token: &str) -> String {
        let res = self
            .bearer(token, Method::POST, "/api/v1/auth/token", None)
            .await;
        body(res, StatusCode::OK).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A request with `token` as `Authorization: Bearer` and nothing else:
    /// no cookie, no CSRF token.
    pub async fn bearer(
        &self,
        token: &str,
        method: Method,
        path: &str,
        payload: Option<Value>,
    ) -> Response {
        let mut req = Client::new()
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(p) = payload {
            req = req.json(&p);
        }
        req.send().await.unwrap()
    }
}
