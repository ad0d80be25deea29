//! Logs through `tracing`; OpenTelemetry traces and metrics exported over OTLP/gRPC
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (a failing export is logged once, with
//! the endpoint); metrics also as Prometheus text ([`crate::metrics`]); W3C trace context carried across gRPC
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
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Keeps the tracer and meter providers alive; call [`Telemetry::shutdown`] last, to
/// flush.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    meters: Option<SdkMeterProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporters.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("telemetry shutdown: {e}");
        }
        if let Some(meters) = self.meters
            && let Err(e) = meters.shutdown()
        {
            eprintln!("metrics shutdown: {e}");
        }
    }
}

/// The OTLP endpoint traces and metrics go to, when one is configured.
fn otlp_endpoint() -> Option<String> {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty())
}

/// Installs the global subscriber (once per process; later calls only return a
/// handle). `RUST_LOG` filters logs (default `info`).
pub fn init(service_name: &str) -> Telemetry {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = Resource::builder()
        .with_service_name(service_name.to_string())
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource.clone());
    let endpoint = otlp_endpoint();
    let mut metric_exporter = None;
    if let Some(endpoint) = &endpoint {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
        {
            Ok(exporter) => {
                builder = builder.with_batch_exporter(Reported::new(exporter, endpoint, "traces"))
            }
            Err(e) => eprintln!("OTLP trace exporter disabled: {e}"),
        }
        match opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .build()
        {
            Ok(exporter) => metric_exporter = Some(Reported::new(exporter, endpoint, "metrics")),
            Err(e) => eprintln!("OTLP metric exporter disabled: {e}"),
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
        let meters = crate::metrics::provider(resource, metric_exporter);
        global::set_meter_provider(meters.clone());
        Telemetry {
            provider: Some(provider),
            meters: Some(meters),
        }
    } else {
        Telemetry {
            provider: None,
            meters: None,
        }
    }
}

/// An exporter that logs when exporting starts failing (once, naming the endpoint)
/// and when it works again, rather than never or at every batch.
#[derive(Debug)]
struct Reported<E> {
    inner: E,
    endpoint: String,
    signal: &'static str,
    failing: std::sync::atomic::AtomicBool,
}

impl<E> Reported<E> {
    fn new(inner: E, endpoint: &str, signal: &'static str) -> Self {
        Self {
            inner,
            endpoint: endpoint.to_string(),
            signal,
            failing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn report(&self, result: &OTelSdkResult) {
        use std::sync::atomic::Ordering;
        match result {
            Err(e) if !self.failing.swap(true, Ordering::Relaxed) => tracing::warn!(
                endpoint = %self.endpoint,
                signal = self.signal,
                error = %e,
                "OpenTelemetry export failing: the collector is unreachable or refused; data is dropped until it answers"
            ),
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => tracing::info!(
                endpoint = %self.endpoint,
                signal = self.signal,
                "OpenTelemetry export works again"
            ),
            _ => {}
        }
    }
}

impl<E: opentelemetry_sdk::trace::SpanExporter> opentelemetry_sdk::trace::SpanExporter
    for Reported<E>
{
    async fn export(&self, batch: Vec<opentelemetry_sdk::trace::SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        self.report(&result);
        result
    }
    fn shutdown_with_timeout(&mut self, timeout: std::time::Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn force_flush(&mut self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource)
    }
}

impl<E: PushMetricExporter> PushMetricExporter for Reported<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        self.report(&result);
        result
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        self.inner.temporality()
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

/// Which side of a message a [`messaging_span`] is.
#[derive(Debug, Clone, Copy)]
pub enum Messaging {
    /// The outbox relay publishing an event (`publish <kind>`).
    Publish,
    /// A consumer processing one (`<consumer> process <kind>`).
    Process,
}

/// The span of one event's publish or processing, with OpenTelemetry's messaging
/// attributes, a child of the context `parent` reads (W3C headers); `name` and
/// `message_id` are formatted only when the span is enabled. The side's own
/// attributes are declared empty for the caller to record:
/// `messaging.consumer.group.name`, `messaging.nats.delivered` and
/// `messaging.batch.message_count` (processing), `helpdesk.outbox.waited_ms`
/// (publishing), and `otel.status_code`.
pub fn messaging_span<'a>(
    side: Messaging,
    name: impl std::fmt::Display,
    subject: &str,
    message_id: impl std::fmt::Display,
    body_size: usize,
    parent: impl Fn(&str) -> Option<&'a str>,
) -> tracing::Span {
    let (kind, operation, operation_name) = match side {
        Messaging::Publish => ("producer", "send", "publish"),
        Messaging::Process => ("consumer", "process", "process"),
    };
    let empty = tracing::field::Empty;
    let span = tracing::info_span!(
        "messaging",
        otel.name = %name,
        otel.kind = kind,
        otel.status_code = empty,
        messaging.system = "nats",
        messaging.operation.type = operation,
        messaging.operation.name = operation_name,
        messaging.destination.name = subject,
        messaging.message.id = %message_id,
        messaging.message.body.size = body_size,
        messaging.consumer.group.name = empty,
        messaging.nats.delivered = empty,
        messaging.batch.message_count = empty,
        helpdesk.outbox.waited_ms = empty,
    );
    set_parent_from(&span, parent);
    span
}

/// Sets the parent of `span` from W3C headers read by `get`.
pub fn set_parent_from<'a>(span: &tracing::Span, get: impl Fn(&str) -> Option<&'a str>) {
    let cx = extract(get);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// Sets the parent of `span` from a stored W3C `traceparent` (work taken up later, from
/// a table, joins the trace of the action that queued it); an empty or invalid one
/// leaves the span a root.
pub fn set_parent_traceparent(span: &tracing::Span, traceparent: &str) {
    set_parent_from(span, |k| (k == "traceparent").then_some(traceparent));
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
