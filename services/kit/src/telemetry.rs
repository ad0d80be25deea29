//! Logs through `tracing`; OpenTelemetry traces exported over OTLP/gRPC when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; W3C trace context carried across gRPC
//! metadata and NATS headers.
//!
//! Spans always get OpenTelemetry ids (even without an exporter) so that every event
//! carries a `traceparent` an integrator can correlate.

use std::collections::HashMap;

use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, global};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Keeps the tracer provider alive; call [`Telemetry::shutdown`] last, to flush.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("telemetry shutdown: {e}");
        }
    }
}

/// Installs the global subscriber (once per process; later calls only return a
/// handle). `RUST_LOG` filters logs (default `info`).
pub fn init(service_name: &str) -> Telemetry {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let mut builder = SdkTracerProvider::builder().with_resource(
        Resource::builder()
            .with_service_name(service_name.to_string())
            .build(),
    );
    if std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|v| !v.is_empty()) {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
        {
            Ok(exporter) => builder = builder.with_batch_exporter(exporter),
            Err(e) => eprintln!("OTLP exporter disabled: {e}"),
        }
    }
    let provider = builder.build();
    let tracer = provider.tracer("helpdesk");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_target(true))
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init()
        .is_ok();
    if installed {
        global::set_tracer_provider(provider.clone());
        Telemetry {
            provider: Some(provider),
        }
    } else {
        Telemetry { provider: None }
    }
}

/// W3C `traceparent` / `tracestate` of the current span, or of a fresh root trace
/// when there is no valid current span.
pub fn current_trace_headers() -> (String, Option<String>) {
    let cx = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut MapCarrier(&mut carrier));
    }
    match carrier.remove("traceparent") {
        Some(traceparent) => (
            traceparent,
            carrier.remove("tracestate").filter(|s| !s.is_empty()),
        ),
        None => (new_root_traceparent(), None),
    }
}

fn new_root_traceparent() -> String {
    let trace: u128 = rand::random::<u128>().max(1);
    let span: u64 = rand::random::<u64>().max(1);
    format!("00-{trace:032x}-{span:016x}-01")
}

/// Sets the parent of `span` from W3C headers read by `get`.
pub fn set_parent_from<'a>(span: &tracing::Span, get: impl Fn(&str) -> Option<&'a str>) {
    let cx = extract(get);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

fn extract<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Context {
    let mut carrier = HashMap::new();
    for key in ["traceparent", "tracestate"] {
        if let Some(v) = get(key) {
            carrier.insert(key.to_string(), v.to_string());
        }
    }
    TraceContextPropagator::new().extract(&carrier)
}

/// Injects the current span's context into gRPC request metadata (clients).
pub fn inject_into_metadata(metadata: &mut tonic::metadata::MetadataMap) {
    let (traceparent, tracestate) = current_trace_headers();
    if let Ok(v) = traceparent.parse() {
        metadata.insert("traceparent", v);
    }
    if let Some(Ok(v)) = tracestate.map(|s| s.parse()) {
        metadata.insert("tracestate", v);
    }
}

struct MapCarrier<'a>(&'a mut HashMap<String, String>);

impl Injector for MapCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}
