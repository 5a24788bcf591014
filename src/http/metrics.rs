//! `GET /metrics` and the middleware that counts requests by route.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::error::{AppError, AppResult};
use crate::http::extract::operator_access;
use crate::http::layers::Hook;
use crate::metrics::{method_label, Metrics};
use crate::service::{ClientInfo, Tessera};

/// Route-level: hands the matched route pattern (e.g.
/// `/api/v1/tenants/{id}`) to [`Count`] through the response, since only
/// the router knows it.
#[derive(Clone, Copy)]
pub struct MarkRoute;

impl Hook for MarkRoute {
    type Note = Option<MatchedPath>;

    fn request(&self, req: &Request) -> Option<MatchedPath> {
        req.extensions().get::<MatchedPath>().cloned()
    }

    fn response<B>(route: Option<MatchedPath>, res: &mut Response<B>) {
        if let Some(route) = route {
            res.extensions_mut().insert(route);
        }
    }
}

/// Outermost: counts every answer by route pattern, method and status, and
/// its latency. Paths that match no route count as `unmatched`, so
/// scanners cannot grow the label set.
#[derive(Clone)]
pub struct Count(pub Metrics);

impl Hook for Count {
    type Note = (Instant, &'static str, Metrics);

    fn request(&self, req: &Request) -> Self::Note {
        let start = Instant::now();
        (start, method_label(req.method().as_str()), self.0.clone())
    }

    fn response<B>((start, method, metrics): Self::Note, res: &mut Response<B>) {
        let route = res
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        metrics.request(
            route,
            method,
            res.status().as_u16(),
            start.elapsed().as_secs_f64(),
        );
    }
}

/// Prometheus metrics, for a scraper holding `metrics.token` (or the cron
/// secret, which already runs the plan check and so may read counts), or a
/// client in `admin_allow_from`. Refused with `403`, as it always was, so
/// scrapers see no change of status.
pub async fn metrics(
    State(core): State<Arc<Tessera>>,
    client: ClientInfo,
    headers: axum::http::HeaderMap,
) -> AppResult<Response> {
    if !core.config.metrics.enabled {
        return Err(AppError::not_found("No such endpoint."));
    }
    let secrets = [
        core.config.metrics.token.as_ref(),
        core.config.cron_secret.as_ref(),
    ];
    if !operator_access(&headers, &client, &secrets) {
        return Err(AppError::forbidden(
            "Metrics need the metrics token, the cron secret, or a caller in admin_allow_from.",
        ));
    }
    let (running, waiting, refused) = core.hasher.load();
    core.metrics.set_hashing(running, waiting, refused);
    for pool in core.store.pool_stats() {
        core.metrics.set_pool(
            pool.pool,
            pool.size - pool.idle.min(pool.size),
            pool.idle,
            pool.max,
        );
    }
    match core.store.outbox_stats().await {
        Ok(outbox) => {
            let age = outbox.oldest.map_or(0.0, |t| {
                (core.clock.now() - t).num_milliseconds().max(0) as f64 / 1000.0
            });
            core.metrics.set_outbox(outbox.depth, age);
        }
        Err(err) => tracing::warn!(error = %err, "reading the outbox for metrics failed"),
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        core.metrics.encode(),
    )
        .into_response())
}
