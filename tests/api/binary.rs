//! The `tessera` binary as an operator runs it.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

fn tessera(dir: &std::path::Path, db: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TESSERA_DATABASE_URL", db)
        .env("TESSERA_LOG_FORMAT", "json");
    cmd
}

#[tokio::test]
async fn migrate_users_create_serve_and_graceful_shutdown() {
    let (dir, db) = fresh_database().await;
    let dir = dir.path();
    operator::migrate(dir, &db);
    operator::import_users(dir, &db);
    operator::create_an_admin(dir, &db);
    operator::refuse_a_weak_password(dir, &db);
    let (server, base) = operator::serve(dir, &db).await;
    let session = operator::log_in(&base).await;
    operator::finish_in_flight_requests_on_sigterm(server, &base).await;
    operator::read_the_log(dir, &session);
}

/// The steps of [`migrate_users_create_serve_and_graceful_shutdown`], in
/// order.
mod operator {
    use std::path::Path;
    use std::process::Child;

    use super::*;

    pub fn migrate(dir: &Path, db: &str) {
        let out = tessera(dir, db).arg("migrate").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Import: good lines land, bad ones are reported, the exit code says so.
    pub fn import_users(dir: &Path, db: &str) {
        let file = dir.join("users.jsonl");
        std::fs::write(
            &file,
            "{\"email\": \"imported@example.test\"}\n{\"email\": \"broken\"}\n",
        )
        .unwrap();
        let out = tessera(dir, db)
            .args(["users", "import"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stdout)
            .contains("imported 1, skipped 0 (already present), bad 1"));
        assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
    }

    pub fn create_an_admin(dir: &Path, db: &str) {
        let mut child = tessera(dir, db)
            .args([
                "users",
                "create",
                "--email",
                "Admin@Example.test",
                "--password-stdin",
                "--admin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"operator-secret-99\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("admin@example.test"));
    }

    /// A weak password is refused with a reason and a failing exit code.
    pub fn refuse_a_weak_password(dir: &Path, db: &str) {
        let mut child = tessera(dir, db)
            .args([
                "users",
                "create",
                "--email",
                "weak@example.test",
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"password\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("common"));
    }

    /// `tessera serve`, logging to `server.log`; returns the process and
    /// its base URL once it answers.
    pub async fn serve(dir: &Path, db: &str) -> (Child, String) {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let server = tessera(dir, db)
            .arg("serve")
            .env("TESSERA_LISTEN", format!("127.0.0.1:{port}"))
            .env("TESSERA_PUBLIC_URL", &base)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        wait_until_up(&base).await;
        (server, base)
    }

    /// The admin logs in (verified, as the CLI made them); returns the
    /// session token.
    pub async fn log_in(base: &str) -> String {
        let client = new_client();
        let res = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": "admin@example.test", "password": "operator-secret-99"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let session = cookie_value(&res, "ces_session");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["user"]["email_verified"], true);
        session
    }

    /// In-flight requests finish when SIGTERM arrives; then a clean exit.
    pub async fn finish_in_flight_requests_on_sigterm(mut server: Child, base: &str) {
        let mut inflight = Vec::new();
        for _ in 0..4 {
            let url = format!("{base}/api/v1/auth/login");
            inflight.push(tokio::spawn(async move {
                new_client()
                    .post(url)
                    .json(&json!({"email": "admin@example.test", "password": "operator-secret-99"}))
                    .send()
                    .await
                    .map(|r| r.status())
            }));
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        let killed = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        for task in inflight {
            assert_eq!(
                task.await.unwrap().expect("answered, not dropped"),
                StatusCode::OK
            );
        }
        let status = tokio::task::spawn_blocking(move || server.wait().unwrap())
            .await
            .unwrap();
        assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    }

    /// The log never holds the password, a session token or a hash.
    pub fn read_the_log(dir: &Path, session: &str) {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
        assert!(log.contains("tessera listening"));
        assert!(!log.contains("operator-secret-99"));
        assert!(!log.contains("argon2id"));
        assert!(!log.contains(session), "no session token in the log");
    }
}

#[tokio::test]
async fn an_unknown_database_scheme_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = tessera(dir.path(), "mysql://localhost/x")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL scheme"));
}

/// A tiny OTLP/HTTP receiver: keeps every body POSTed to `/v1/traces`.
async fn otlp_receiver() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = bodies.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut reader = BufReader::new(read);
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line).await.unwrap();
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap();
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).await.unwrap();
                    if request_line.starts_with("POST /v1/traces") {
                        kept.lock().unwrap().push(body);
                    }
                    write
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n")
                        .await
                        .unwrap();
                }
            });
        }
    });
    (port, bodies)
}

#[tokio::test]
async fn traces_are_exported_over_otlp_when_the_otel_variables_say_so() {
    let (dir, db) = fresh_database().await;
    let (otlp_port, bodies) = otlp_receiver().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = tessera(dir.path(), &db)
        .arg("serve")
        .env("TESSERA_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{otlp_port}"),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "tessera-under-test")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_up(&base).await;
    // A request that is part of a caller's trace.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let res = reqwest::Client::new()
        .get(format!("{base}/api/v1/health/live"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let trace_bytes = hex::decode(trace_id).unwrap();
    let start = std::time::Instant::now();
    let exported = loop {
        let found = bodies.lock().unwrap().iter().any(|body| {
            body.windows(trace_bytes.len())
                .any(|w| w == trace_bytes.as_slice())
                && body.windows(18).any(|w| w == b"tessera-under-test")
        });
        if found || start.elapsed() > Duration::from_secs(10) {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        exported,
        "a span of the caller's trace, from service tessera-under-test, was exported"
    );
}
