//! Serving connections: HTTP/1.1 through hyper with a deadline on request
//! heads and a cap on open connections, and graceful shutdown.
//!
//! `axum::serve` would do, but it offers neither: without a timer hyper
//! waits for a request head forever, so a client that opens connections and
//! sends half a request line (or nothing) holds each one for good
//! (slowloris), and nothing bounds how many it holds. Only HTTP/1.1 is
//! served, as before (axum's `http2` feature is off; TLS and HTTP/2 end at
//! the reverse proxy).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::Config;
use crate::metrics::Metrics;

/// File descriptors kept back from the connection cap for everything else
/// the process opens: database and Redis connections, SMTP, outbound HTTP,
/// the SQLite files, the listener itself.
const RESERVED_FDS: usize = 128;

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting, lets every connection finish the request it is on (idle ones
/// close at once) and returns when all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &Config,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) {
    let max = connection_cap(config);
    let slots = Arc::new(Semaphore::new(max));
    let mut http = hyper::server::conn::http1::Builder::new();
    // Hyper starts the header timer whenever it waits for a request head,
    // which is also while a keep-alive connection sits idle between
    // requests: one deadline bounds both.
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(config.http.header_timeout_seconds));
    let stop = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut shutdown = pin!(shutdown);
    let mut burst: Option<Burst> = None;

    loop {
        // A slot first, then the connection: at the cap, new connections
        // wait in the kernel's listen backlog (the clients see a slow
        // connect, not a refusal) until one of ours closes, which the
        // header timeout guarantees for those that send nothing.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                let burst = burst.get_or_insert_with(|| {
                    tracing::warn!(
                        max_connections = max,
                        "connection limit reached: new connections wait until one closes \
                         (http.max_connections)"
                    );
                    Burst {
                        since: Instant::now(),
                        waited: 0,
                    }
                });
                burst.waited += 1;
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break, // never closed
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        // The burst is over once a tenth of the slots are free again; one
        // line for it, not one per connection that had to wait.
        if burst.is_some() && slots.available_permits() >= (max / 10).max(1) {
            if let Some(Burst { since, waited }) = burst.take() {
                tracing::info!(
                    seconds = since.elapsed().as_secs(),
                    waited,
                    "connections are below the limit again"
                );
            }
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };

        let app = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req.map(Body::new))
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let stop = stop.clone();
        let metrics = metrics.clone();
        connections.spawn(async move {
            let _slot = slot;
            let _open = metrics.connection_opened();
            let mut connection = pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = served {
                if err.is_timeout() {
                    metrics.header_timeout();
                }
                // Otherwise a client that went away or sent garbage: its
                // business, answered by hyper where it could be.
                tracing::trace!(error = %err, "connection ended with an error");
            }
        });
    }

    drop(listener);
    stop.cancel();
    connections.close();
    connections.wait().await;
}

struct Burst {
    since: Instant,
    waited: u64,
}

/// `http.max_connections`, lowered to what the open-files limit leaves, so
/// that the cap is met (and connections wait) before `accept` fails with
/// "too many open files".
fn connection_cap(config: &Config) -> usize {
    let wanted = config.http.max_connections.max(1);
    let Some(files) = open_files_limit() else {
        return wanted;
    };
    let reserve = RESERVED_FDS + config.database_max_connections as usize;
    let room = files.saturating_sub(reserve).max(files / 2).max(1);
    if wanted > room {
        tracing::warn!(
            max_connections = wanted,
            open_files_limit = files,
            serving_at_most = room,
            "http.max_connections is more than the open-files limit allows; raise the limit \
             (LimitNOFILE=, ulimit -n) to serve more"
        );
        return room;
    }
    wanted
}

/// The soft limit on open files (Linux), if it is known and finite.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// As `axum::serve` does: a connection that failed before we took it is
/// the client's; anything else (out of file descriptors) gets a pause, so
/// the loop does not spin.
async fn accept_failed(err: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accepting a connection failed; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_under_the_open_files_limit() {
        let mut config = Config::default();
        config.http.max_connections = usize::MAX / 2;
        let cap = connection_cap(&config);
        if let Some(files) = open_files_limit() {
            assert!(cap < files, "{cap} < {files}");
        }
        config.http.max_connections = 3;
        assert_eq!(connection_cap(&config), 3);
    }
}
