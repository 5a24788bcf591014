//! Tessera: a self-hosted authentication service.
//!
//! `http → service → domain`, with the `store` and `mail` traits below the
//! service. See `DESIGN.md` in the shared folder and the README.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod service;
pub mod store;
pub mod telemetry;

pub use config::Config;
pub use http::router as build_router;
pub use service::Tessera;

use clock::Clock;
use mail::{Mailer, OutboxWorker};

/// Connects to the configured database, applies migrations and builds the core.
pub async fn open(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Tessera>> {
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let store = store::connect_with(
        &config.database_url,
        config.database_max_connections,
        Duration::from_millis(config.database_timeout_ms),
    )
    .await?;
    store.migrate().await?;
    Ok(Arc::new(Tessera::new(config, store, clock).await?))
}

/// Serves HTTP on `listener` and runs the background jobs until `shutdown`
/// completes; in-flight requests finish before it returns.
pub async fn serve(
    listener: TcpListener,
    core: Arc<Tessera>,
    mailer: Arc<dyn Mailer>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Before the first request: failed logins are padded to the slowest
    // stored hash from the first probe on.
    core.learn_password_hash_costs().await;
    let (stop_jobs, jobs_stopped) = watch::channel(false);
    let worker = OutboxWorker {
        store: core.store.clone(),
        mailer,
        clock: core.clock.clone(),
        wake: core.mail_wake.clone(),
        poll: Duration::from_secs(core.config.mail.poll_seconds.max(1)),
        max_attempts: i32::try_from(core.config.mail.max_attempts).unwrap_or(i32::MAX),
        node: core.node.clone(),
        lease: chrono::Duration::seconds(
            i64::try_from(core.config.mail.claim_seconds).unwrap_or(i64::MAX / 2),
        ),
        metrics: core.metrics.clone(),
    };
    let background = [
        tokio::spawn(worker.run(jobs_stopped.clone())),
        tokio::spawn(core.clone().run_jobs(jobs_stopped.clone())),
        tokio::spawn(core.clone().follow_keys(jobs_stopped.clone())),
        {
            let store = core.store.clone();
            let stop = jobs_stopped.clone();
            tokio::spawn(async move { store.follow_changes(stop).await })
        },
    ];
    let config = core.config.clone();
    let metrics = core.metrics.clone();
    http::server::serve(listener, http::router(core), &config, metrics, shutdown).await;
    let _ = stop_jobs.send(true);
    for task in background {
        let _ = task.await;
    }
    Ok(())
}
