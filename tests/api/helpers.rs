//! What every test uses: a server on a loopback port ([`TestApp`]), a mail
//! catcher, one way to make a test database ([`fresh_database`]), signing
//! up and in on each surface (`user`, `login`, `legacy_login`,
//! `dashboard_sign_in`), and typed helpers per area, each in its own module
//! below and all on [`TestApp`]:
//!
//! - `tenants`: `create_tenant`, `invite`, `invitation_mail`, `accept_invite`;
//! - `tokens`: `pat`, `create_pat`, `jwt`, `exchange`, `bearer`;
//! - `two_factor`: `enable_totp`, `user_with_totp`, `password_step`,
//!   `totp_code`, and codes from an independent TOTP implementation;
//! - `pages`: the hosted pages as a browser drives them (`page`, `submit`,
//!   `form_token`, `ui_sign_in`, ...), read with the [`html`] functions.

pub mod html;
mod pages;
mod tenants;
mod tokens;
mod two_factor;

pub use tokens::jwt_claims;
pub use two_factor::{base32_decode, totp_at};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use tessera::clock::OffsetClock;
use tessera::{Config, Tessera};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};

pub const PASSWORD: &str = "correct-horse-battery";

/// One message caught by the SMTP listener.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    pub data: String,
}

impl Mail {
    /// The message body with quoted-printable soft breaks and escapes undone.
    pub fn text(&self) -> String {
        let raw = self.data.replace("=\r\n", "");
        let mut out = String::new();
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '=' {
                let hex: String = chars.clone().take(2).collect();
                if hex.len() == 2 && hex.chars().all(|h| h.is_ascii_hexdigit()) {
                    out.push(u8::from_str_radix(&hex, 16).unwrap() as char);
                    chars.next();
                    chars.next();
                    continue;
                }
            }
            out.push(c);
        }
        out
    }

    /// The whole Subject header, with folded continuation lines joined.
    pub fn subject(&self) -> String {
        let mut subject = String::new();
        let mut inside = false;
        for line in self.data.lines() {
            if inside {
                if line.starts_with(' ') || line.starts_with('\t') {
                    subject.push_str(line);
                    continue;
                }
                break;
            }
            if let Some(rest) = line.strip_prefix("Subject: ") {
                subject.push_str(rest);
                inside = true;
            }
        }
        subject
    }

    /// The `token` query parameter of the first link in the mail.
    pub fn token(&self) -> String {
        let text = self.text();
        let start = text.find("?token=").expect("mail has a token link") + "?token=".len();
        text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }
}

/// A minimal SMTP server that accepts everything and keeps it. A message
/// counts once the client has sent all of it (the final `.`); one whose
/// client goes away before that is dropped, as a real server drops it.
#[derive(Clone, Default)]
pub struct MailCatcher {
    pub mails: Arc<Mutex<Vec<Mail>>>,
    arrived: Arc<Notify>,
    /// While set, transactions wait at their `DATA` command.
    held: Arc<std::sync::atomic::AtomicBool>,
    /// Transactions waiting at the gate.
    waiting: Arc<std::sync::atomic::AtomicUsize>,
}

impl MailCatcher {
    pub async fn start(listener: TcpListener) -> MailCatcher {
        let catcher = MailCatcher::default();
        let c = catcher.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let c = c.clone();
                tokio::spawn(async move {
                    let _ = c.session(socket).await;
                });
            }
        });
        catcher
    }

    async fn session(&self, socket: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 catcher ESMTP\r\n").await?;
        let mut to = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_ascii_uppercase();
            if command.starts_with("EHLO") || command.starts_with("HELO") {
                write.write_all(b"250-catcher\r\n250 8BITMIME\r\n").await?;
            } else if command.starts_with("MAIL FROM") {
                to.clear();
                write.write_all(b"250 OK\r\n").await?;
            } else if command.starts_with("RCPT TO") {
                let addr = line.trim_end()[8..]
                    .trim()
                    .trim_matches(['<', '>'])
                    .to_string();
                to.push(addr.to_lowercase());
                write.write_all(b"250 OK\r\n").await?;
            } else if command == "DATA" {
                if self.held.load(std::sync::atomic::Ordering::SeqCst) {
                    self.waiting
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    while self.held.load(std::sync::atomic::Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    self.waiting
                        .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                }
                write.write_all(b"354 go ahead\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(&line);
                }
                self.mails.lock().unwrap().push(Mail {
                    to: to.clone(),
                    data,
                });
                self.arrived.notify_waiters();
                write.write_all(b"250 OK queued\r\n").await?;
            } else if command == "QUIT" {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                write.write_all(b"250 OK\r\n").await?;
            }
        }
    }

    /// Makes transactions wait at `DATA` until [`MailCatcher::release`].
    pub fn hold(&self) {
        self.held.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn release(&self) {
        self.held.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Transactions waiting at the gate now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn to(&self, address: &str) -> Vec<Mail> {
        self.mails
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.to.iter().any(|t| t == address))
            .cloned()
            .collect()
    }

    /// Waits until `address` has received `count` mails; returns the last.
    pub async fn wait_for(&self, address: &str, count: usize) -> Mail {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let notified = self.arrived.notified();
            let mails = self.to(address);
            if mails.len() >= count {
                return mails[count - 1].clone();
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "no mail #{count} for {address} within 30 s (have {})",
                    mails.len()
                );
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub core: Arc<Tessera>,
    pub clock: Arc<OffsetClock>,
    pub mail: MailCatcher,
    pub client: Client,
    shutdown: Option<oneshot::Sender<()>>,
    _dir: TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The PostgreSQL server named by `TESSERA_TEST_DATABASE_URL`, if any:
/// tests then make their databases on it instead of SQLite files.
pub fn postgres_server() -> Option<String> {
    std::env::var("TESSERA_TEST_DATABASE_URL").ok()
}

/// A fresh database for one test and the temporary directory that goes
/// with it: a SQLite file in the directory, or a new PostgreSQL database on
/// [`postgres_server`]. Every test database in the suite comes from here;
/// keep the directory alive as long as the database is used (tests also
/// keep logs and other files beside it).
pub async fn fresh_database() -> (TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = match postgres_server() {
        Some(admin) => {
            let name = format!("tessera_test_{}", uuid::Uuid::new_v4().simple());
            let pool = sqlx::PgPool::connect(&admin)
                .await
                .expect("PostgreSQL reachable");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&pool)
                .await
                .expect("create database");
            pool.close().await;
            let mut url = url::Url::parse(&admin).unwrap();
            url.set_path(&name);
            url.to_string()
        }
        None => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("tessera.db").display()
        ),
    };
    (dir, url)
}

pub fn new_client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts Tessera on a loopback port with a mail catcher; `tweak` may
    /// change the configuration first.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        let smtp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let smtp_port = smtp.local_addr().unwrap().port();
        let mail = MailCatcher::start(smtp).await;
        let mut app = Self::spawn_bare(smtp_port, tweak).await;
        app.mail = mail;
        app
    }

    /// Starts Tessera pointing at `smtp_port` without starting a catcher there.
    pub async fn spawn_bare(smtp_port: u16, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let (dir, database_url) = fresh_database().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let mut config = Config {
            database_url,
            database_max_connections: 8,
            public_url: base.parse().unwrap(),
            smtp_url: Some(format!("smtp://127.0.0.1:{smtp_port}").into()),
            ..Config::default()
        };
        config.mail.poll_seconds = 1;
        // Every test client comes from 127.0.0.1; the limit has its own tests.
        config.security.rate_limit_per_minute = 100_000;
        tweak(&mut config);
        let clock = Arc::new(OffsetClock::default());
        let mailer = tessera::mail::from_config(&config).unwrap();
        let core = tessera::open(config, clock.clone())
            .await
            .expect("tessera opens");
        let (tx, rx) = oneshot::channel();
        let served = core.clone();
        tokio::spawn(async move {
            tessera::serve(listener, served, mailer, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestApp {
            base,
            core,
            clock,
            mail: MailCatcher::default(),
            client: new_client(),
            shutdown: Some(tx),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, client: &Client, path: &str, body: Value) -> Response {
        client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, client: &Client, path: &str) -> Response {
        client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn signup(&self, client: &Client, email: &str) -> Response {
        self.post(
            client,
            "/api/v1/auth/signup",
            json!({"email": email, "password": PASSWORD}),
        )
        .await
    }

    pub async fn login(&self, client: &Client, email: &str, password: &str) -> Response {
        self.post(
            client,
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Signs in on the legacy surface (`POST /api/auth/login`).
    pub async fn legacy_login(&self, client: &Client, email: &str, password: &str) -> Response {
        self.post(
            client,
            "/api/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Signs in on the dashboard surface (`POST /auth/sign-in/email`).
    pub async fn dashboard_sign_in(
        &self,
        client: &Client,
        email: &str,
        password: &str,
    ) -> Response {
        self.post(
            client,
            "/auth/sign-in/email",
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Moves the clock to the start of a minute, so a test of a per-minute
    /// budget does not straddle two windows.
    pub fn at_minute_start(&self) {
        use tessera::clock::Clock;
        let into = self.clock.now().timestamp().rem_euclid(60);
        self.clock.advance(chrono::Duration::seconds(60 - into));
    }

    /// A client signed up (and so signed in) as `email`, with the address
    /// verified through the mailed link, as an owner of the address would.
    pub async fn user(&self, email: &str) -> Client {
        let client = self.unverified_user(email).await;
        self.verify_address(email).await;
        client
    }

    /// A client signed up (and so signed in) as `email`, the address not
    /// verified yet: what a squatter on someone else's address holds.
    pub async fn unverified_user(&self, email: &str) -> Client {
        let client = new_client();
        let res = self.signup(&client, email).await;
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "{}",
            res.text().await.unwrap()
        );
        client
    }

    /// Follows the newest verification link mailed to `email`.
    pub async fn verify_address(&self, email: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mail = loop {
            let found = self
                .mail
                .to(email)
                .into_iter()
                .rev()
                .find(|m| m.subject().contains("Confirm your email"));
            if let Some(mail) = found {
                break mail;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no verification mail for {email}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let res = self
            .post(
                &new_client(),
                "/api/v1/auth/verify-email",
                json!({"token": mail.token()}),
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{}",
            res.text().await.unwrap()
        );
    }

    pub async fn csrf(&self, client: &Client) -> String {
        let res = self.get(client, "/api/v1/auth/csrf").await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()["csrf_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A cookie-authenticated write with the CSRF token.
    pub async fn write(
        &self,
        client: &Client,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let csrf = self.csrf(client).await;
        let mut req = client
            .request(method, self.url(path))
            .header("x-csrf-token", csrf);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap()
    }

    pub async fn me_status(&self, client: &Client) -> StatusCode {
        self.get(client, "/api/v1/auth/me").await.status()
    }

    pub async fn bearer_get(&self, token: &str, path: &str) -> Response {
        Client::new()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

/// The `Set-Cookie` header for `name`, if the response has one.
pub fn set_cookie(res: &Response, name: &str) -> Option<String> {
    res.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value of the session cookie set by a response.
pub fn cookie_value(res: &Response, name: &str) -> String {
    let header = set_cookie(res, name).expect("session cookie set");
    header[name.len() + 1..]
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// Asserts the contract's error shape and code; returns the body.
pub async fn expect_error(res: Response, status: StatusCode, code: &str) -> Value {
    let actual = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(actual, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

pub fn unique_email(prefix: &str) -> String {
    format!(
        "{prefix}-{}@example.test",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Asserts the status and returns the JSON body (`Null` when empty).
pub async fn body(res: Response, status: StatusCode) -> Value {
    let actual = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(actual, status, "{text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

pub async fn me(app: &TestApp, c: &Client) -> Value {
    body(app.get(c, "/api/v1/auth/me").await, StatusCode::OK).await
}

pub async fn user_id(app: &TestApp, c: &Client) -> String {
    me(app, c).await["user"]["id"].as_str().unwrap().to_owned()
}

/// A loopback port nothing listens on (for now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `GET {base}/health` answers 200 (10 s at most).
pub async fn wait_until_up(base: &str) {
    for _ in 0..200 {
        if let Ok(res) = reqwest::get(format!("{base}/health")).await {
            if res.status() == StatusCode::OK {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not come up at {base}");
}
