//! The database going away under a running server, as an operator's
//! restart or a network cut looks from outside: every endpoint that needs
//! it answers `503 UNAVAILABLE` with `Retry-After` within a bounded time,
//! never a 500, and the same requests work again once it is back, without
//! restarting Tessera.
//!
//! On PostgreSQL the machine's server is shared with other tests, so it is
//! not restarted: Tessera talks to it through a TCP proxy here, which
//! "takes the database down" by cutting every connection and refusing new
//! ones (that story is ignored unless asked for, `--include-ignored`). On
//! SQLite, where there is no server, another process holding the write lock
//! is the outage that can happen.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{header, Client, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::*;

/// How long Tessera waits for the database in these tests.
const DB_TIMEOUT_MS: u64 = 1_000;
/// The longest an answer may take while the database is down: the wait
/// above, twice for requests that go to the database twice, and room for a
/// busy machine. (The request timeout, 30 s, is far above.)
const BOUND: Duration = Duration::from_millis(2 * DB_TIMEOUT_MS + 3_000);

/// A TCP proxy in front of PostgreSQL that can be taken down (every
/// proxied connection cut, new ones refused: the port is closed) and
/// brought back on the same port.
struct Proxy {
    port: u16,
    upstream: String,
    accepting: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            upstream,
            accepting: None,
            connections: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        let connections = self.connections.clone();
        self.accepting = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let piping = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                connections.lock().unwrap().push(piping);
            }
        }));
    }

    /// Cuts every connection and closes the port.
    async fn down(&mut self) {
        if let Some(accepting) = self.accepting.take() {
            accepting.abort();
            let _ = accepting.await;
        }
        let connections: Vec<_> = self.connections.lock().unwrap().drain(..).collect();
        for piping in connections {
            piping.abort();
            let _ = piping.await;
        }
    }

    /// Listens on the same port again.
    async fn up(&mut self) {
        for _ in 0..100 {
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", self.port)).await {
                self.serve(listener);
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("port {} could not be bound again", self.port);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(accepting) = self.accepting.take() {
            accepting.abort();
        }
        for piping in self.connections.lock().unwrap().drain(..) {
            piping.abort();
        }
    }
}

/// One request of each kind, from a signed-in client where it needs one.
struct Probes {
    /// Signed in through `/api/v1` (its `ces_session` also serves `/auth`,
    /// `/api/auth` and the pages).
    client: Client,
    email: String,
    jwt: String,
    /// A browser holding the sign-in form and its cookie.
    browser: Client,
    form_token: String,
}

impl Probes {
    async fn new(app: &TestApp) -> Probes {
        let email = unique_email("outage");
        let client = app.user(&email).await;
        let jwt = app.jwt(&client).await;
        let browser = new_client();
        let form_token = app.form_token(&browser, "/ui/sign-in").await;
        Probes {
            client,
            email,
            jwt,
            browser,
            form_token,
        }
    }

    /// Every probe once: its name, the answer, and how long it took.
    async fn run(&self, app: &TestApp) -> Vec<(&'static str, Response, Duration)> {
        let login = json!({"email": self.email, "password": PASSWORD});
        let fresh = json!({"email": unique_email("new"), "password": PASSWORD});
        let anonymous = new_client();
        let mut answers = Vec::new();
        macro_rules! probe {
            ($name:expr, $request:expr) => {{
                let start = Instant::now();
                let res = $request.send().await.unwrap();
                answers.push(($name, res, start.elapsed()));
            }};
        }
        probe!(
            "v1 login",
            anonymous.post(app.url("/api/v1/auth/login")).json(&login)
        );
        probe!(
            "v1 signup",
            anonymous.post(app.url("/api/v1/auth/signup")).json(&fresh)
        );
        probe!(
            "v1 me (cookie)",
            self.client.get(app.url("/api/v1/auth/me"))
        );
        probe!(
            "v1 me (JWT)",
            anonymous
                .get(app.url("/api/v1/auth/me"))
                .bearer_auth(&self.jwt)
        );
        probe!("v1 sessions", self.client.get(app.url("/api/v1/sessions")));
        probe!("v1 ready", anonymous.get(app.url("/api/v1/health/ready")));
        probe!(
            "legacy login",
            anonymous.post(app.url("/api/auth/login")).json(&login)
        );
        probe!("legacy me", self.client.get(app.url("/api/auth/me")));
        probe!(
            "dashboard sign-in",
            anonymous.post(app.url("/auth/sign-in/email")).json(&login)
        );
        probe!("dashboard me", self.client.get(app.url("/auth/me")));
        probe!("page account", self.client.get(app.url("/ui/account")));
        probe!(
            "page sign-in",
            self.browser.post(app.url("/ui/sign-in")).form(&[
                ("form_token", self.form_token.as_str()),
                ("email", self.email.as_str()),
                ("password", PASSWORD),
            ])
        );
        answers
    }
}

/// Asserts that every probe answered 503 with `Retry-After` and the
/// contract's body (JSON on the API, a page saying so on `/ui`) in time.
async fn assert_unavailable(answers: Vec<(&'static str, Response, Duration)>) -> Duration {
    let mut slowest = Duration::ZERO;
    for (name, res, took) in answers {
        slowest = slowest.max(took);
        let status = res.status();
        let retry_after = res
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let page = name.starts_with("page");
        let text = res.text().await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{name}: {text}");
        assert!(retry_after.is_some_and(|s| (1..=30).contains(&s)), "{name}");
        assert!(took < BOUND, "{name} took {took:?}");
        if page {
            assert!(text.contains("Temporarily unavailable"), "{name}: {text}");
        } else {
            let body: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["code"], "UNAVAILABLE", "{name}: {body}");
        }
        // Nothing of the driver, the pool or the address leaks.
        let lower = text.to_lowercase();
        for internal in ["pool", "sqlx", "communicating", "refused", "timed out"] {
            assert!(
                !lower.contains(internal),
                "{name} says {internal:?}: {text}"
            );
        }
    }
    slowest
}

/// Asserts that every probe was served as when the database is up.
async fn assert_served(answers: Vec<(&'static str, Response, Duration)>) {
    for (name, res, _) in answers {
        let status = res.status();
        let text = res.text().await.unwrap();
        let expected = match name {
            "v1 signup" => StatusCode::CREATED,
            // Signed in: off to the account page.
            "page sign-in" => StatusCode::SEE_OTHER,
            _ => StatusCode::OK,
        };
        assert_eq!(status, expected, "{name}: {text}");
    }
}

/// The PostgreSQL server the proxy stands in front of; fails the test
/// without one.
fn postgres_admin() -> String {
    postgres_server()
        .expect("the proxy stands in front of PostgreSQL: set TESSERA_TEST_DATABASE_URL")
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn postgres_down_is_503_everywhere_and_back_without_a_restart() {
    let admin = postgres_admin();
    let admin = url::Url::parse(&admin).unwrap();
    let upstream = format!(
        "{}:{}",
        admin.host_str().unwrap(),
        admin.port().unwrap_or(5432)
    );
    let mut proxy = Proxy::start(upstream).await;
    let port = proxy.port;
    let app = TestApp::spawn_with(|c| {
        let mut url = url::Url::parse(&c.database_url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(port)).unwrap();
        c.database_url = url.to_string();
        c.database_timeout_ms = DB_TIMEOUT_MS;
    })
    .await;
    let probes = Probes::new(&app).await;
    assert_served(probes.run(&app).await).await;

    // Down for longer than the pool's idle ping (5 s), as a real restart
    // is: every request on the way hits a dead connection, a refused one,
    // or the wait for one.
    proxy.down().await;
    let start = Instant::now();
    let mut rounds = 0;
    let mut slowest = Duration::ZERO;
    while rounds < 2 || start.elapsed() < Duration::from_secs(6) {
        slowest = slowest.max(assert_unavailable(probes.run(&app).await).await);
        rounds += 1;
    }
    eprintln!("down: {rounds} rounds of probes, slowest answer {slowest:?}");

    proxy.up().await;
    let back = Instant::now();
    assert_served(probes.run(&app).await).await;
    eprintln!(
        "back: every probe served, the first round in {:?}",
        back.elapsed()
    );

    // A restart quicker than the idle ping, with nothing in between: the
    // pooled connections are all dead but look fresh. At most the first
    // request to need one meets one (and answers 503); it marks the rest
    // for a ping, so the requests after it are served. (Logins: a `me`
    // could come from the credential cache.)
    proxy.down().await;
    proxy.up().await;
    let anonymous = new_client();
    let login = || app.login(&anonymous, &probes.email, PASSWORD);
    let res = login().await;
    let first = res.status();
    assert!(
        first == StatusCode::OK
            || (first == StatusCode::SERVICE_UNAVAILABLE
                && res.headers().contains_key(header::RETRY_AFTER)),
        "{first}: {}",
        res.text().await.unwrap()
    );
    eprintln!("quick restart: the first login answered {first}");
    for _ in 0..5 {
        assert_eq!(login().await.status(), StatusCode::OK);
    }
    assert_served(probes.run(&app).await).await;
}

#[tokio::test]
async fn sqlite_locked_by_another_process_is_503_for_writes_then_served() {
    if postgres_server().is_some() {
        eprintln!("skipped: the SQLite lock story runs on SQLite");
        return;
    }
    let app = TestApp::spawn_with(|c| c.database_timeout_ms = DB_TIMEOUT_MS).await;
    let email = unique_email("locked");
    let client = app.user(&email).await;
    let form = new_client();
    let form_token = app.form_token(&form, "/ui/sign-in").await;

    // Another process (a `sqlite3` shell, a backup) takes the write lock
    // and keeps it.
    let mut other = sqlx::SqliteConnection::connect(&app.core.config.database_url)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();

    let login = json!({"email": email, "password": PASSWORD});
    let anonymous = new_client();
    for (name, request) in [
        (
            "signup",
            anonymous
                .post(app.url("/api/v1/auth/signup"))
                .json(&json!({"email": unique_email("new"), "password": PASSWORD})),
        ),
        (
            "login",
            anonymous.post(app.url("/api/v1/auth/login")).json(&login),
        ),
        (
            "dashboard sign-in",
            anonymous.post(app.url("/auth/sign-in/email")).json(&login),
        ),
        (
            "page sign-in",
            form.post(app.url("/ui/sign-in")).form(&[
                ("form_token", form_token.as_str()),
                ("email", email.as_str()),
                ("password", PASSWORD),
            ]),
        ),
    ] {
        let start = Instant::now();
        let res = request.send().await.unwrap();
        let took = start.elapsed();
        let status = res.status();
        let retry_after = res.headers().contains_key(header::RETRY_AFTER);
        let text = res.text().await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{name}: {text}");
        assert!(retry_after, "{name}");
        assert!(!text.to_lowercase().contains("locked"), "{name}: {text}");
        assert!(took < BOUND, "{name} took {took:?}");
        eprintln!("locked: {name} answered 503 in {took:?}");
    }
    // Reads go on under WAL: only writes wait for the lock.
    assert_eq!(app.me_status(&client).await, StatusCode::OK);

    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    let res = app.login(&new_client(), &email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.signup(&new_client(), &unique_email("after")).await;
    assert_eq!(res.status(), StatusCode::CREATED);
}
