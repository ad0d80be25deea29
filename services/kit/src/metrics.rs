//! Metrics through OpenTelemetry: exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and always readable as Prometheus text
//! ([`render`]), which [`AdminServer`] serves at `/metrics` on an admin HTTP port.
//!
//! Instruments are made from [`meter`]; their names follow OpenTelemetry's semantic
//! conventions where one exists (`rpc.server.call.duration`) and are `helpdesk.*`
//! otherwise. In Prometheus text a name's dots become underscores, its unit a suffix
//! (`_seconds`) and a counter's name ends in `_total`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};
use tokio_util::sync::CancellationToken;

/// The reader that [`render`] collects from (set once, by [`provider`]).
static READER: OnceLock<Arc<ManualReader>> = OnceLock::new();

/// The platform's meter (the global provider's; a no-op one until telemetry is
/// initialised).
pub fn meter() -> Meter {
    opentelemetry::global::meter("helpdesk")
}

/// Histogram boundaries for durations in seconds: 1 ms to 1 minute.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Histogram boundaries for waits in seconds: 1 s to 1 hour.
pub const WAIT_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// A meter provider with the Prometheus reader and, when `otlp` is given, a periodic
/// OTLP export (every `OTEL_METRIC_EXPORT_INTERVAL` milliseconds, default 60 s).
pub(crate) fn provider<E>(
    resource: opentelemetry_sdk::Resource,
    otlp: Option<E>,
) -> SdkMeterProvider
where
    E: opentelemetry_sdk::metrics::exporter::PushMetricExporter,
{
    let reader = READER
        .get_or_init(|| Arc::new(ManualReader::builder().build()))
        .clone();
    let mut builder = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(Shared(reader));
    if let Some(exporter) = otlp {
        builder = builder
            .with_reader(opentelemetry_sdk::metrics::PeriodicReader::builder(exporter).build());
    }
    builder.build()
}

/// Lets [`render`] keep the reader the provider owns.
#[derive(Debug)]
struct Shared(Arc<ManualReader>);

impl MetricReader for Shared {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// Every metric of this process in Prometheus' text exposition format (empty before
/// telemetry is initialised).
pub fn render() -> String {
    let Some(reader) = READER.get() else {
        return String::new();
    };
    let mut collected = ResourceMetrics::default();
    if let Err(e) = reader.collect(&mut collected) {
        tracing::warn!(error = %e, "collecting metrics failed");
        return String::new();
    }
    let mut out = String::new();
    for scope in collected.scope_metrics() {
        for metric in scope.metrics() {
            match metric.data() {
                AggregatedMetrics::F64(data) => write_metric(&mut out, metric, data),
                AggregatedMetrics::U64(data) => write_metric(&mut out, metric, data),
                AggregatedMetrics::I64(data) => write_metric(&mut out, metric, data),
            }
        }
    }
    out
}

/// Writes one metric's `# HELP`, `# TYPE` and samples.
fn write_metric<T: Copy + Into<Number>>(
    out: &mut String,
    metric: &opentelemetry_sdk::metrics::data::Metric,
    data: &MetricData<T>,
) {
    let base = prometheus_name(metric.name(), metric.unit());
    let help = metric
        .description()
        .replace('\\', "\\\\")
        .replace('\n', "\\n");
    match data {
        MetricData::Gauge(gauge) => {
            let _ = writeln!(out, "# HELP {base} {help}\n# TYPE {base} gauge");
            for p in gauge.data_points() {
                sample(out, &base, &labels(p.attributes(), None), p.value().into());
            }
        }
        MetricData::Sum(sum) => {
            let (name, kind) = if sum.is_monotonic() {
                (format!("{base}_total"), "counter")
            } else {
                (base.clone(), "gauge")
            };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for p in sum.data_points() {
                sample(out, &name, &labels(p.attributes(), None), p.value().into());
            }
        }
        MetricData::Histogram(histogram) => {
            let _ = writeln!(out, "# HELP {base} {help}\n# TYPE {base} histogram");
            for p in histogram.data_points() {
                let mut cumulative = 0u64;
                let bounds: Vec<f64> = p.bounds().collect();
                for (i, count) in p.bucket_counts().enumerate() {
                    cumulative += count;
                    let le = bounds
                        .get(i)
                        .map_or_else(|| "+Inf".to_string(), |b| format_float(*b));
                    let name = format!("{base}_bucket");
                    sample(
                        out,
                        &name,
                        &labels(p.attributes(), Some(&le)),
                        Number::U(cumulative),
                    );
                }
                let plain = labels(p.attributes(), None);
                sample(out, &format!("{base}_sum"), &plain, p.sum().into());
                sample(out, &format!("{base}_count"), &plain, Number::U(p.count()));
            }
        }
        // Not made by the platform's instruments.
        MetricData::ExponentialHistogram(_) => {}
    }
}

/// A sample's value.
#[derive(Clone, Copy)]
enum Number {
    F(f64),
    U(u64),
    I(i64),
}

impl From<f64> for Number {
    fn from(v: f64) -> Self {
        Number::F(v)
    }
}
impl From<u64> for Number {
    fn from(v: u64) -> Self {
        Number::U(v)
    }
}
impl From<i64> for Number {
    fn from(v: i64) -> Self {
        Number::I(v)
    }
}

fn sample(out: &mut String, name: &str, labels: &str, value: Number) {
    let value = match value {
        Number::F(v) => format_float(v),
        Number::U(v) => v.to_string(),
        Number::I(v) => v.to_string(),
    };
    let _ = writeln!(out, "{name}{labels} {value}");
}

fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        v.to_string()
    }
}

/// `{a="x",b="y"}` of a data point's attributes (and `le` for a bucket), or nothing.
fn labels<'a>(attributes: impl Iterator<Item = &'a KeyValue>, le: Option<&str>) -> String {
    let mut pairs: Vec<String> = attributes
        .map(|kv| {
            format!(
                "{}=\"{}\"",
                sanitize(kv.key.as_str()),
                escape(&kv.value.to_string())
            )
        })
        .collect();
    if let Some(le) = le {
        pairs.push(format!("le=\"{le}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A name Prometheus accepts: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// The Prometheus name of an OpenTelemetry metric: sanitised, with its unit as a
/// suffix (`s` → `_seconds`; annotations like `{event}` and `1` add nothing).
fn prometheus_name(name: &str, unit: &str) -> String {
    let suffix = match unit {
        "s" => "seconds",
        "ms" => "milliseconds",
        "By" => "bytes",
        _ => "",
    };
    let name = sanitize(name);
    if suffix.is_empty() || name.ends_with(suffix) {
        name
    } else {
        format!("{name}_{suffix}")
    }
}

/// The admin HTTP server: `/metrics` in Prometheus text.
pub struct AdminServer {
    listener: tokio::net::TcpListener,
    /// The bound address.
    pub addr: SocketAddr,
}

impl AdminServer {
    /// Binds `addr`.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        Ok(Self { listener, addr })
    }

    /// Serves until `stop`.
    pub async fn run(self, stop: CancellationToken) -> std::io::Result<()> {
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(|| async {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    render(),
                )
            }),
        );
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    }

    /// Serves in the background until `stop`, logging a failure.
    pub fn spawn(self, stop: CancellationToken) {
        let addr = self.addr;
        tokio::spawn(async move {
            if let Err(e) = self.run(stop).await {
                tracing::error!(error = %e, %addr, "admin server stopped");
            }
        });
    }
}

/// A gauge whose values are sampled (from the database or NATS) by a task rather
/// than kept by the code path: each source (a service) replaces its own points.
pub struct Sampled {
    points: Arc<std::sync::Mutex<Points>>,
    _gauge: opentelemetry::metrics::ObservableGauge<f64>,
}

type Points = std::collections::BTreeMap<String, Vec<(Vec<KeyValue>, f64)>>;

impl Sampled {
    /// Registers the gauge `name` (in `unit`).
    pub fn new(name: &'static str, unit: &'static str, description: &'static str) -> Self {
        let points: Arc<std::sync::Mutex<Points>> = Arc::default();
        let read = points.clone();
        let gauge = meter()
            .f64_observable_gauge(name)
            .with_unit(unit)
            .with_description(description)
            .with_callback(move |observer| {
                if let Ok(points) = read.lock() {
                    for (attributes, value) in points.values().flatten() {
                        observer.observe(*value, attributes);
                    }
                }
            })
            .build();
        Self {
            points,
            _gauge: gauge,
        }
    }

    /// Replaces the points of `source`.
    pub fn set(&self, source: &str, points: Vec<(Vec<KeyValue>, f64)>) {
        if let Ok(mut all) = self.points.lock() {
            all.insert(source.to_string(), points);
        }
    }
}

/// Declares a [`Sampled`] gauge made on first use:
/// `sampled!(NAME, "helpdesk.x", "{unit}", "What it shows");`
#[macro_export]
macro_rules! sampled {
    ($vis:vis $name:ident, $metric:literal, $unit:literal, $description:literal) => {
        $vis static $name: std::sync::LazyLock<$crate::metrics::Sampled> =
            std::sync::LazyLock::new(|| {
                $crate::metrics::Sampled::new($metric, $unit, $description)
            });
    };
}

/// How often gauges are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Runs `sample` every `every` until `stop` (a failed sample is logged at debug
/// level: the dependency's outage is reported by health and the relay).
pub async fn sample_every<F, Fut, E>(every: Duration, stop: CancellationToken, mut sample: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    loop {
        if let Err(e) = sample().await {
            tracing::debug!(error = %e, "sampling metrics failed");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        assert_eq!(
            prometheus_name("rpc.server.call.duration", "s"),
            "rpc_server_call_duration_seconds"
        );
        assert_eq!(
            prometheus_name("helpdesk.queue.length", "{conversation}"),
            "helpdesk_queue_length"
        );
        assert_eq!(sanitize("9lives-x"), "_9lives_x");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
