//! Logs through `tracing`; OpenTelemetry traces exported over OTLP/gRPC when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; W3C trace context carried across gRPC
//! metadata and NATS headers.
//!
//! Spans always get OpenTelemetry ids (even without an exporter) so that every event
//! carries a `traceparent` an integrator can correlate.
//!
//! Logs are for people by default; `HELPDESK_LOG_FORMAT=json` writes them as JSON
//! lines for log shippers, each with the trace and span ids of the span it was written
//! in ([`JsonLines`]).

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
    let json = std::env::var("HELPDESK_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let (human, machine) = if json {
        (
            None,
            Some(tracing_subscriber::fmt::layer().event_format(JsonLines)),
        )
    } else {
        (
            Some(tracing_subscriber::fmt::layer().with_target(true)),
            None,
        )
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .with(human)
        .with(machine)
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

/// Log lines as JSON objects: `timestamp` (RFC 3339, UTC), `level`, `target`,
/// `message`, the event's other fields, and `trace_id` / `span_id` of the innermost
/// span that has them.
pub struct JsonLines;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut line = serde_json::Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        event.record(&mut JsonFields(&mut line));
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                let ext = span.extensions();
                let Some(otel) = ext.get::<tracing_opentelemetry::OtelData>() else {
                    continue;
                };
                if let (Some(trace), Some(id)) = (otel.trace_id(), otel.span_id()) {
                    line.insert("trace_id".into(), trace.to_string().into());
                    line.insert("span_id".into(), id.to_string().into());
                    line.insert("span".into(), span.name().into());
                    break;
                }
            }
        }
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// Collects an event's fields (`message` among them) into a JSON object.
struct JsonFields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}
