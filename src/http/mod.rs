//! HTTP: the router, its middleware, and the surfaces.

use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, OnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{AppError, ErrorCode};
use crate::service::Tessera;

pub mod bot;
pub mod cookies;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod legacy;
pub mod metrics;
pub mod oauth;
pub mod openapi;
pub mod server;
pub mod surface;
pub mod ui;
pub mod v1;

/// CORS for the API surfaces: only origins in `cors_origins`, echoed
/// exactly, with credentials, and `Vary: Origin`; `null` and look-alike
/// origins get no CORS headers at all (the browser then refuses to read).
fn cors(core: &Tessera) -> tower_http::cors::CorsLayer {
    use axum::http::Method;
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<HeaderValue> = core
        .config
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("x-csrf-token"),
            HeaderName::from_static("x-captcha-response"),
            REQUEST_ID,
        ])
        .max_age(Duration::from_secs(600))
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP service: the routes, then the layers every request
/// passes through, from the innermost out.
pub fn router(core: Arc<Tessera>) -> Router {
    let app = routes(&core)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let app = guard_input(app, &core);
    let app = contain_failures(app, &core);
    let app = secure_headers(app, &core);
    let app = trace_requests(app);
    // Outermost, so it counts every answer, timeouts and panics included.
    app.layer(axum::middleware::from_fn_with_state(
        core.clone(),
        metrics::count,
    ))
    .with_state(core)
}

/// Every route. The documented ones (`/api/v1`, `/api/auth`, the health
/// and key endpoints) come from their handlers' `#[utoipa::path]`, which
/// gives both the route and its part of the OpenAPI document.
fn routes(core: &Arc<Tessera>) -> Router<Arc<Tessera>> {
    let mark = || axum::middleware::from_fn(metrics::mark_route);
    let (api, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(v1::health::health))
        .routes(routes!(v1::auth::jwks))
        .merge(v1::router(core))
        .merge(legacy::router(core))
        .split_for_parts();
    let document = openapi::Document::new(document);
    let pages = if core.config.ui.enabled {
        ui::router().route_layer(mark())
    } else {
        Router::new()
    };
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .route(
            "/api/v1/openapi.json",
            get(move || std::future::ready(document.clone())),
        )
        .merge(api)
        // Before the nests: the sub-routers mark their own (full) routes.
        .route_layer(mark())
        .nest("/auth", dashboard::router(core).route_layer(mark()))
        .nest("/ui", pages)
}

/// What a request may bring: CORS (outside the routes, so preflights of
/// any path are answered), the body limit, one `Authorization` header.
fn guard_input(app: Router<Arc<Tessera>>, core: &Tessera) -> Router<Arc<Tessera>> {
    app.layer(cors(core))
        .layer(DefaultBodyLimit::max(core.config.http.body_limit_bytes))
        .layer(axum::middleware::from_fn(one_authorization))
}

/// A handler that panics is a `500`; one that takes longer than
/// `http.request_timeout_seconds` is a `503` with `Retry-After`.
fn contain_failures(app: Router<Arc<Tessera>>, core: &Tessera) -> Router<Arc<Tessera>> {
    let timeout = Duration::from_secs(core.config.http.request_timeout_seconds.max(1));
    app.layer(
        ServiceBuilder::new()
            .layer(CatchPanicLayer::custom(|_| {
                AppError::internal(anyhow::anyhow!("a handler panicked")).into_response()
            }))
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                // Logged here: with `Retry-After` it would otherwise
                // pass for shed load, which is not logged.
                tracing::warn!("request timed out");
                AppError::unavailable("The request took too long.")
                    .with_retry_after(crate::error::RETRY_AFTER_DEPENDENCY)
            }))
            .layer(tower::timeout::TimeoutLayer::new(timeout)),
    )
}

/// The headers every answer carries unless it says otherwise.
fn secure_headers(app: Router<Arc<Tessera>>, core: &Tessera) -> Router<Arc<Tessera>> {
    // HSTS only when the public URL is https (an http deployment would be
    // locked out of itself).
    let hsts = (core.config.public_url.scheme() == "https")
        .then(|| HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    app.layer(
        ServiceBuilder::new()
            // Nothing is cached unless it says so (the pages' stylesheet).
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ))
            // The pages send a fuller policy of their own.
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("frame-ancestors 'none'"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::X_FRAME_OPTIONS,
                HeaderValue::from_static("DENY"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::STRICT_TRANSPORT_SECURITY,
                hsts,
            )),
    )
}

/// A request id (kept from the client or made), a span per request, and
/// the log of what failed (inside the span, outside everything that may
/// answer with an error).
fn trace_requests(app: Router<Arc<Tessera>>) -> Router<Arc<Tessera>> {
    app.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_response(
                        |res: &axum::http::Response<_>, latency: Duration, span: &tracing::Span| {
                            span.record("http.response.status_code", res.status().as_u16());
                            DefaultOnResponse::new()
                                .level(Level::DEBUG)
                                .on_response(res, latency, span);
                        },
                    )
                    .on_failure(()),
            )
            .layer(axum::middleware::from_fn(error::log_failures))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
    )
}

/// The span of one request: the path only, since query strings can carry
/// tokens.
fn request_span<B>(req: &Request<B>) -> tracing::Span {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!("request",
        otel.name = %format_args!("HTTP {}", crate::metrics::method_label(req.method().as_str())),
        method = %req.method(), path = %req.uri().path(), request_id = %id,
        http.response.status_code = tracing::field::Empty);
    if crate::telemetry::exporting() {
        crate::telemetry::adopt_parent(&span, req.headers());
    }
    span
}

/// Two `Authorization` headers are `400`. Proxies, frameworks and this
/// server disagree on which one counts (the first, the last, both joined),
/// so letting the first win blindly would let a header smuggled past one of
/// them decide who the caller is.
async fn one_authorization(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if req
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        return AppError::bad_request("Send one Authorization header, not several.")
            .into_response();
    }
    next.run(req).await
}

async fn not_found() -> AppError {
    AppError::not_found("No such endpoint.")
}

async fn method_not_allowed() -> Response {
    AppError::new(
        ErrorCode::MethodNotAllowed,
        "Method not allowed on this endpoint.",
    )
    .into_response()
}
