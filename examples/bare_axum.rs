//! The HTTP ceiling for `bench/run`: a bare axum router with one route,
//! `GET /health` answering the same `{"status":"ok"}` as Tessera's, and no
//! layers, no state, no logging. It is served by Tessera's own connection
//! loop (`tessera::http::server::serve`: hyper's HTTP/1.1 with the same
//! header timeout and connection cap) on the same runtime (`#[tokio::main]`,
//! one worker per core), so that Tessera's `/health` divided by this
//! measures what the router's shared layers cost every request.
//!
//! ```text
//! cargo run --release --example bare_axum -- --listen 127.0.0.1:8081
//! ```

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use serde::Serialize;
use tessera::config::Config;
use tessera::metrics::Metrics;

#[derive(Parser)]
#[command(about = "A bare axum /health, served the way Tessera serves")]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("bare axum listening on {}", listener.local_addr()?);
    let app = Router::new().route("/health", get(health));
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    // Stopped by SIGTERM (the default action) or Ctrl-C.
    tessera::http::server::serve(listener, app, &Config::default(), Metrics::new(), shutdown).await;
    Ok(())
}
