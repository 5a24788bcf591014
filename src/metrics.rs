//! Prometheus metrics, served at `GET /metrics` (OpenMetrics text).
//!
//! One registry per core (`prometheus-client`), not a process-global
//! recorder, so several cores in one process (the tests run many) keep
//! their own counts. Counters and histograms are updated as things happen;
//! gauges that describe the database (outbox, pools) and the hashing pool
//! are read when scraped.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: &'static str,
}

/// The method label: one of the methods HTTP defines, or `other`. HTTP lets
/// a client invent any token as a method; labelling each would let anyone
/// grow the series without bound (each one costs memory and scrape size),
/// as `unmatched` already prevents for paths.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: &'static str,
    state: &'static str,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// The outcome of a sign-in attempt, as counted.
#[derive(Debug, Clone, Copy)]
pub enum LoginOutcome {
    Success,
    /// Wrong password or unknown email (or a wrong second factor).
    Failure,
    /// Refused because the email is locked.
    Locked,
    /// The password was right; the second step is to come.
    SecondFactor,
    /// A right password for an account that may not sign in (disabled,
    /// unverified).
    Refused,
}

impl LoginOutcome {
    fn label(self) -> &'static str {
        match self {
            LoginOutcome::Success => "success",
            LoginOutcome::Failure => "failure",
            LoginOutcome::Locked => "locked",
            LoginOutcome::SecondFactor => "second_factor_required",
            LoginOutcome::Refused => "refused",
        }
    }
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    logins: Family<OutcomeLabels, Counter>,
    lockouts: Counter,
    rate_limited: Counter,
    hash_refused: Counter,
    hash_waiting: Gauge,
    hash_running: Gauge,
    outbox_depth: Gauge,
    outbox_oldest_age: Gauge<f64, AtomicU64>,
    mail_sent: Counter,
    mail_failed: Counter,
    db_connections: Family<PoolLabels, Gauge>,
    cache_hits: Counter,
    cache_misses: Counter,
    connections_open: Gauge,
    header_timeouts: Counter,
}

/// The core's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tessera");
        let inner = Inner {
            requests: Family::default(),
            latency: LatencyFamily::new_with_constructor(latency_histogram),
            logins: Family::default(),
            lockouts: Counter::default(),
            rate_limited: Counter::default(),
            hash_refused: Counter::default(),
            hash_waiting: Gauge::default(),
            hash_running: Gauge::default(),
            outbox_depth: Gauge::default(),
            outbox_oldest_age: Gauge::default(),
            mail_sent: Counter::default(),
            mail_failed: Counter::default(),
            db_connections: Family::default(),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            connections_open: Gauge::default(),
            header_timeouts: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by route pattern, method and status",
            inner.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route pattern and method",
            inner.latency.clone(),
        );
        registry.register(
            "logins",
            "Sign-in attempts by outcome",
            inner.logins.clone(),
        );
        registry.register(
            "lockouts",
            "Emails locked after too many failed sign-ins",
            inner.lockouts.clone(),
        );
        registry.register(
            "rate_limited",
            "Credential requests refused by the per-IP limit",
            inner.rate_limited.clone(),
        );
        registry.register(
            "password_hash_refused",
            "Requests refused because the hashing queue was full",
            inner.hash_refused.clone(),
        );
        registry.register(
            "password_hash_queue_depth",
            "Password hashes waiting for a worker",
            inner.hash_waiting.clone(),
        );
        registry.register(
            "password_hash_running",
            "Password hashes being computed",
            inner.hash_running.clone(),
        );
        registry.register(
            "mail_outbox_depth",
            "Messages in the outbox, not yet delivered",
            inner.outbox_depth.clone(),
        );
        registry.register(
            "mail_outbox_oldest_age_seconds",
            "Age of the oldest message in the outbox (0 when empty)",
            inner.outbox_oldest_age.clone(),
        );
        registry.register(
            "mail_sent",
            "Messages delivered by this node",
            inner.mail_sent.clone(),
        );
        registry.register(
            "mail_failed",
            "Failed delivery attempts by this node",
            inner.mail_failed.clone(),
        );
        registry.register(
            "db_connections",
            "Database pool connections by pool and state (idle, busy, max)",
            inner.db_connections.clone(),
        );
        registry.register(
            "credential_cache_hits",
            "Credentials resolved from this node's cache",
            inner.cache_hits.clone(),
        );
        registry.register(
            "credential_cache_misses",
            "Credentials resolved from the database",
            inner.cache_misses.clone(),
        );
        registry.register(
            "http_connections_open",
            "TCP connections being served (at most http.max_connections)",
            inner.connections_open.clone(),
        );
        registry.register(
            "http_header_timeouts",
            "Connections closed for sending no whole request head within \
             http.header_timeout_seconds (slow or idle)",
            inner.header_timeouts.clone(),
        );
        Metrics(Arc::new(Inner { registry, ..inner }))
    }

    /// Counts an answer; `method` is folded by [`method_label`].
    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let labels = RequestLabels {
            route: route.to_owned(),
            method: method_label(method),
            status,
        };
        self.0.requests.get_or_create(&labels).inc();
        // The same route string for the second family: one allocation.
        let RequestLabels { route, method, .. } = labels;
        self.0
            .latency
            .get_or_create(&RouteLabels { route, method })
            .observe(seconds);
    }

    pub fn login(&self, outcome: LoginOutcome) {
        self.0
            .logins
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
    }

    pub fn lockout(&self) {
        self.0.lockouts.inc();
    }

    pub fn rate_limited(&self) {
        self.0.rate_limited.inc();
    }

    pub fn mail(&self, sent: bool) {
        if sent {
            self.0.mail_sent.inc();
        } else {
            self.0.mail_failed.inc();
        }
    }

    pub fn cache_lookup(&self, hit: bool) {
        if hit {
            self.0.cache_hits.inc();
        } else {
            self.0.cache_misses.inc();
        }
    }

    /// A connection is being served until the guard is dropped.
    pub fn connection_opened(&self) -> ConnectionGuard {
        self.0.connections_open.inc();
        ConnectionGuard(self.clone())
    }

    pub fn header_timeout(&self) {
        self.0.header_timeouts.inc();
    }

    /// The gauges read at scrape time; `refused` is the hasher's own total.
    pub fn set_hashing(&self, running: usize, waiting: usize, refused: u64) {
        self.0
            .hash_refused
            .inner()
            .store(refused, std::sync::atomic::Ordering::Relaxed);
        self.0
            .hash_waiting
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
        self.0
            .hash_running
            .set(i64::try_from(running).unwrap_or(i64::MAX));
    }

    pub fn set_outbox(&self, depth: i64, oldest_age_seconds: f64) {
        self.0.outbox_depth.set(depth);
        self.0.outbox_oldest_age.set(oldest_age_seconds);
    }

    pub fn set_pool(&self, pool: &'static str, busy: u32, idle: u32, max: u32) {
        for (state, value) in [("busy", busy), ("idle", idle), ("max", max)] {
            self.0
                .db_connections
                .get_or_create(&PoolLabels { pool, state })
                .set(i64::from(value));
        }
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.0.registry);
        out
    }
}

/// Counts one open connection while it lives.
pub struct ConnectionGuard(Metrics);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0 .0.connections_open.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_the_text_format() {
        let metrics = Metrics::new();
        metrics.request("/api/v1/auth/me", "GET", 200, 0.002);
        metrics.login(LoginOutcome::Failure);
        metrics.login(LoginOutcome::Failure);
        metrics.set_pool("main", 3, 5, 16);
        let text = metrics.encode();
        assert!(text.contains(
            "tessera_http_requests_total{route=\"/api/v1/auth/me\",method=\"GET\",status=\"200\"} 1"
        ));
        assert!(
            text.contains("tessera_logins_total{outcome=\"failure\"} 2"),
            "{text}"
        );
        assert!(text.contains("tessera_db_connections{pool=\"main\",state=\"busy\"} 3"));
        assert!(text.contains("tessera_http_request_duration_seconds_bucket"));
    }

    #[test]
    fn invented_methods_fold_into_one_label() {
        let metrics = Metrics::new();
        for n in 0..50 {
            metrics.request("unmatched", &format!("BREW{n}"), 405, 0.001);
        }
        metrics.request("unmatched", "get", 404, 0.001);
        let text = metrics.encode();
        assert!(
            text.contains(
                "tessera_http_requests_total{route=\"unmatched\",method=\"other\",status=\"405\"} 50"
            ),
            "{text}"
        );
        assert!(!text.contains("BREW"), "{text}");
        let guard = metrics.connection_opened();
        assert!(metrics.encode().contains("tessera_http_connections_open 1"));
        drop(guard);
        assert!(metrics.encode().contains("tessera_http_connections_open 0"));
    }
}
