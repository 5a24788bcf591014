//! HTTP: the router, its middleware, and the surfaces.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, OnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{AppError, ErrorCode};
use crate::http::layers::{AroundLayer, DeadlineLayer, RefuseLayer};
use crate::service::Tessera;

pub mod bot;
pub mod cookies;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod layers;
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
/// passes through, from the outermost in.
///
/// The layers go in one `Router::layer` call: axum boxes what each call
/// adds around every route, and clones each box, with every box nested
/// inside it, on every request, so every extra call costs each request
/// more than the one before.
pub fn router(core: Arc<Tessera>) -> Router {
    let app = routes(&core)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let hsts = hsts(&core);
    let timeout = Duration::from_secs(core.config.http.request_timeout_seconds.max(1));
    app.layer(
        ServiceBuilder::new()
            // Outermost, so it counts every answer, timeouts and panics
            // included.
            .layer(AroundLayer(metrics::Count(core.metrics.clone())))
            // A request id (kept from the client or made), a span per
            // request, and the log of what failed (inside the span, outside
            // everything that may answer with an error).
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestId))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_response(
                        |res: &axum::http::Response<_>, latency: Duration, span: &tracing::Span| {
                            if status_is_read() {
                                span.record("http.response.status_code", res.status().as_u16());
                            }
                            DefaultOnResponse::new()
                                .level(Level::DEBUG)
                                .on_response(res, latency, span);
                        },
                    )
                    .on_failure(()),
            )
            .map_response(error::log_failures)
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            // The headers every answer carries unless it says otherwise.
            .map_response(move |res| secure_headers(res, hsts.as_ref()))
            // A handler that panics is a `500`; one that takes longer than
            // `http.request_timeout_seconds` is a `503` with `Retry-After`.
            .layer(CatchPanicLayer::custom(|_| {
                AppError::internal(anyhow::anyhow!("a handler panicked")).into_response()
            }))
            .layer(DeadlineLayer {
                after: timeout,
                answer: timed_out,
            })
            // What a request may bring: one `Authorization` header, the
            // body limit, CORS (around the routes and the fallbacks, so
            // preflights of any path are answered).
            .layer(RefuseLayer(one_authorization))
            .layer(DefaultBodyLimit::max(core.config.http.body_limit_bytes))
            .layer(cors(&core)),
    )
    .with_state(core)
}

/// Every route. The documented ones (`/api/v1`, `/api/auth`, the health
/// and key endpoints) come from their handlers' `#[utoipa::path]`, which
/// gives both the route and its part of the OpenAPI document.
fn routes(core: &Arc<Tessera>) -> Router<Arc<Tessera>> {
    let mark = || AroundLayer(metrics::MarkRoute);
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

/// HSTS only when the public URL is https (an http deployment would be
/// locked out of itself).
fn hsts(core: &Tessera) -> Option<HeaderValue> {
    (core.config.public_url.scheme() == "https")
        .then(|| HeaderValue::from_static("max-age=31536000; includeSubDomains"))
}

/// The security headers of every answer: those an answer may set itself
/// are added when it has not, the others replace its own. (Set in the
/// order the six `SetResponseHeaderLayer`s they replace set them.)
fn secure_headers<B>(mut res: Response<B>, hsts: Option<&HeaderValue>) -> Response<B> {
    let headers = res.headers_mut();
    if let Some(hsts) = hsts {
        if !headers.contains_key(header::STRICT_TRANSPORT_SECURITY) {
            headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The pages send a fuller policy of their own.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        );
    }
    if !headers.contains_key(header::REFERRER_POLICY) {
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Nothing is cached unless it says so (the pages' stylesheet).
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Request ids: random (version 4) UUIDs, as tower-http's
/// `MakeRequestUuid` makes them, drawn from the thread's CSPRNG rather than
/// from a `getrandom` system call per request.
#[derive(Clone, Copy)]
struct MakeRequestId;

impl tower_http::request_id::MakeRequestId for MakeRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut text = uuid::Uuid::encode_buffer();
        let text = id.hyphenated().encode_lower(&mut text);
        HeaderValue::from_str(text).ok().map(RequestId::new)
    }
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
        otel.name = %span_name(req.method()),
        method = %req.method(), path = %req.uri().path(), request_id = %id,
        http.response.status_code = tracing::field::Empty);
    if crate::telemetry::exporting() {
        crate::telemetry::adopt_parent(&span, req.headers());
    }
    span
}

/// `HTTP <method>`, the method folded as the metrics fold it.
fn span_name(method: &axum::http::Method) -> &'static str {
    match crate::metrics::method_label(method.as_str()) {
        "GET" => "HTTP GET",
        "HEAD" => "HTTP HEAD",
        "POST" => "HTTP POST",
        "PUT" => "HTTP PUT",
        "PATCH" => "HTTP PATCH",
        "DELETE" => "HTTP DELETE",
        "OPTIONS" => "HTTP OPTIONS",
        "CONNECT" => "HTTP CONNECT",
        "TRACE" => "HTTP TRACE",
        _ => "HTTP other",
    }
}

/// Whether a request span's status code can be read by anyone: the trace
/// exporter, or the debug line that ends each request. Recording it costs
/// the JSON log format a parse and rewrite of the span's fields, so it is
/// recorded only then (the span's other fields are in every line, and
/// nothing else is logged in a request span after its answer).
fn status_is_read() -> bool {
    crate::telemetry::exporting()
        || tracing::enabled!(target: "tower_http::trace::on_response", Level::DEBUG)
}

/// The answer to a request that took longer than
/// `http.request_timeout_seconds`.
fn timed_out() -> Response {
    // Logged here: with `Retry-After` it would otherwise pass for shed
    // load, which is not logged.
    tracing::warn!("request timed out");
    AppError::unavailable("The request took too long.")
        .with_retry_after(crate::error::RETRY_AFTER_DEPENDENCY)
        .into_response()
}

/// Two `Authorization` headers are `400`. Proxies, frameworks and this
/// server disagree on which one counts (the first, the last, both joined),
/// so letting the first win blindly would let a header smuggled past one of
/// them decide who the caller is.
fn one_authorization(req: &axum::extract::Request) -> Option<Response> {
    let several = req
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some();
    several.then(|| {
        AppError::bad_request("Send one Authorization header, not several.").into_response()
    })
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
