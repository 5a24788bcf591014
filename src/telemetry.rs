//! Logs, and OpenTelemetry trace export when the standard `OTEL_*`
//! variables ask for it.
//!
//! Export is on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and neither `OTEL_SDK_DISABLED=true`
//! nor `OTEL_TRACES_EXPORTER=none`). Spans go out as OTLP over HTTP/protobuf
//! in batches (`OTEL_BSP_*`); `OTEL_SERVICE_NAME` and
//! `OTEL_RESOURCE_ATTRIBUTES` name the service (`tessera` by default),
//! `OTEL_TRACES_SAMPLER` samples, `OTEL_EXPORTER_OTLP_HEADERS` adds headers.
//! A request's `traceparent` header makes its span a child of the caller's.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are being exported (so requests should read `traceparent`).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Keeps the exporter running; flushes what is buffered on drop.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(err) = provider.shutdown() {
                eprintln!("flushing traces failed: {err}");
            }
        }
    }
}

fn env_is(name: &str, value: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(value))
}

fn wants_export() -> bool {
    let endpoint = [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()));
    endpoint && !env_is("OTEL_SDK_DISABLED", "true") && !env_is("OTEL_TRACES_EXPORTER", "none")
}

fn tracer_provider() -> anyhow::Result<SdkTracerProvider> {
    if std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
        .is_ok_and(|p| p.trim() != "http/protobuf")
    {
        eprintln!("tessera exports traces as OTLP http/protobuf only; ignoring OTEL_EXPORTER_OTLP_PROTOCOL");
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name("tessera");
    }
    Ok(SdkTracerProvider::builder()
        .with_resource(resource.build())
        .with_batch_exporter(exporter)
        .build())
}

/// Sets up logging (JSON off a terminal, `RUST_LOG` filters) and, when the
/// environment asks for it, trace export.
pub fn init(format: Option<LogFormat>) -> anyhow::Result<Telemetry> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let logs = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().boxed(),
    }
    .with_filter(filter);
    let provider = if wants_export() {
        Some(tracer_provider()?)
    } else {
        None
    };
    let traces = provider.as_ref().map(|provider| {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("tessera"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .init();
    EXPORTING.store(provider.is_some(), Ordering::Relaxed);
    if provider.is_some() {
        tracing::info!("exporting traces over OTLP");
    }
    Ok(Telemetry { provider })
}

/// Makes `span` a child of the trace the request's `traceparent` names.
pub fn adopt_parent(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    let _ = span.set_parent(parent);
}
