//! Tessera: a self-hosted authentication service.
//!
//! `http → service → domain`, with the `store` and `mail` traits below the
//! service. See `DESIGN.md` in the shared folder and the README.

use std::future::Future;
use std::net::SocketAddr;
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
pub mod service;
pub mod store;

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
    let store = store::connect(&config.database_url, config.database_max_connections).await?;
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
    let (stop_jobs, jobs_stopped) = watch::channel(false);
    let worker = OutboxWorker {
        store: core.store.clone(),
        mailer,
        clock: core.clock.clone(),
        wake: core.mail_wake.clone(),
        poll: Duration::from_secs(core.config.mail.poll_seconds.max(1)),
        max_attempts: i32::try_from(core.config.mail.max_attempts).unwrap_or(i32::MAX),
    };
    let outbox = tokio::spawn(worker.run(jobs_stopped.clone()));
    let plans = tokio::spawn(plan_check_timer(core.clone(), jobs_stopped));
    let app = http::router(core).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_jobs.send(true);
    let _ = outbox.await;
    let _ = plans.await;
    served.map_err(Into::into)
}

/// Runs the plan check every `plans.check_interval_seconds` (0: never).
async fn plan_check_timer(core: Arc<Tessera>, mut stop: watch::Receiver<bool>) {
    let every = core.config.plans.check_interval_seconds;
    if every == 0 {
        return;
    }
    let mut ticks = tokio::time::interval(Duration::from_secs(every));
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if let Err(err) = core.run_plan_check(None).await {
                    tracing::warn!(error = %err, "plan check failed");
                }
            }
            _ = stop.changed() => return,
        }
    }
}
