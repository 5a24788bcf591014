//! The hosted pages (`/ui`) driven as a browser does: open a page, read its
//! form (see [`super::html`]), post the form back.

use reqwest::{Client, Response, StatusCode};

use super::html;
use super::{TestApp, PASSWORD};

impl TestApp {
    /// `GET path` as `client`: the status and the page.
    pub async fn page(&self, client: &Client, path: &str) -> (StatusCode, String) {
        let res = client.get(self.url(path)).send().await.unwrap();
        let status = res.status();
        (status, res.text().await.unwrap())
    }

    /// Posts `form` (URL-encoded, as a browser does) to `path`.
    pub async fn submit(&self, client: &Client, path: &str, form: &[(&str, &str)]) -> Response {
        client.post(self.url(path)).form(form).send().await.unwrap()
    }

    /// Opens the page at `path` and returns its form's `form_token`; the
    /// client then holds the cookie the token is paired with.
    pub async fn form_token(&self, client: &Client, path: &str) -> String {
        let (_, page) = self.page(client, path).await;
        html::form_token(&page)
    }

    /// Signs up through the page (as "Ada", with [`PASSWORD`]); the client
    /// then holds the session cookie.
    pub async fn ui_sign_up(&self, client: &Client, email: &str) -> Response {
        let token = self.form_token(client, "/ui/sign-up").await;
        self.submit(
            client,
            "/ui/sign-up",
            &[
                ("form_token", &token),
                ("name", "Ada"),
                ("email", email),
                ("password", PASSWORD),
            ],
        )
        .await
    }

    /// Signs in through the page.
    pub async fn ui_sign_in(&self, client: &Client, email: &str, password: &str) -> Response {
        let token = self.form_token(client, "/ui/sign-in").await;
        self.submit(
            client,
            "/ui/sign-in",
            &[
                ("form_token", &token),
                ("email", email),
                ("password", password),
            ],
        )
        .await
    }

    /// The account page (asserted `200`) and its CSRF token.
    pub async fn account_page(&self, client: &Client) -> (String, String) {
        let (status, page) = self.page(client, "/ui/account").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let csrf = html::csrf_token(&page);
        (page, csrf)
    }
}
