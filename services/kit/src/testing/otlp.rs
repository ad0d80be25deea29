//! An OpenTelemetry collector for tests: an OTLP/gRPC server (the protocol's own
//! generated service, from `opentelemetry-proto`) that keeps the spans and the names
//! of the metrics it is sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;

/// One span as received.
#[derive(Debug, Clone)]
pub struct Span {
    /// Hex trace id.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// Hex id of its parent, empty for a root.
    pub parent_span_id: String,
    /// Its name.
    pub name: String,
    /// The `service.name` of the process that sent it.
    pub service: String,
    /// Its attributes, values as text.
    pub attributes: HashMap<String, String>,
    /// Its status code: 0 unset, 1 ok, 2 error.
    pub status: i32,
}

impl Span {
    /// An attribute's value, or "".
    pub fn attr(&self, key: &str) -> &str {
        self.attributes.get(key).map_or("", String::as_str)
    }
}

#[derive(Default)]
struct Store {
    spans: Mutex<Vec<Span>>,
    metrics: Mutex<Vec<String>>,
}

/// A collector listening on 127.0.0.1.
#[derive(Clone)]
pub struct Collector {
    /// Where it listens.
    pub addr: SocketAddr,
    store: Arc<Store>,
}

fn text(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

struct Traces(Arc<Store>);
struct Metrics(Arc<Store>);

#[tonic::async_trait]
impl TraceService for Traces {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = Vec::new();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .map(text)
                .unwrap_or_default();
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                spans.push(Span {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    service: service.clone(),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), text(kv)))
                        .collect(),
                    status: span.status.map_or(0, |s| s.code),
                });
            }
        }
        self.0.spans.lock().expect("lock").extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Metrics {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let names: Vec<String> = request
            .into_inner()
            .resource_metrics
            .into_iter()
            .flat_map(|r| r.scope_metrics)
            .flat_map(|s| s.metrics)
            .map(|m| m.name)
            .collect();
        self.0.metrics.lock().expect("lock").extend(names);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Collector {
    /// Listens on `port` of 127.0.0.1 (0: any free one).
    pub async fn start(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the collector");
        let addr = listener.local_addr().expect("addr");
        let store = Arc::new(Store::default());
        let (traces, metrics) = (Traces(store.clone()), Metrics(store.clone()));
        tokio::spawn(async move {
            let incoming = futures::stream::unfold(listener, |l| async move {
                Some((l.accept().await.map(|(s, _)| s), l))
            });
            let _ = tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(traces))
                .add_service(MetricsServiceServer::new(metrics))
                .serve_with_incoming(incoming)
                .await;
        });
        Self { addr, store }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.store.spans.lock().expect("lock").clone()
    }

    /// The names of the metrics received so far (once per export).
    pub fn metric_names(&self) -> Vec<String> {
        self.store.metrics.lock().expect("lock").clone()
    }

    /// Waits (at most `limit`) until `found` finds something in the spans received.
    pub async fn wait_for<T>(
        &self,
        limit: Duration,
        found: impl Fn(&[Span]) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(t) = found(&self.spans()) {
                return Some(t);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The spans of one trace, to walk from parent to child.
pub struct Trace<'a> {
    spans: Vec<&'a Span>,
}

impl<'a> Trace<'a> {
    /// The spans of `trace_id` among `spans`.
    pub fn of(spans: &'a [Span], trace_id: &str) -> Self {
        Self {
            spans: spans.iter().filter(|s| s.trace_id == trace_id).collect(),
        }
    }

    /// The spans of the trace.
    pub fn spans(&self) -> &[&'a Span] {
        &self.spans
    }

    /// The first span named `name` that descends from `ancestor`.
    pub fn below(&self, ancestor: &Span, name: impl Fn(&str) -> bool) -> Option<&'a Span> {
        self.spans
            .iter()
            .copied()
            .find(|s| name(&s.name) && self.descends(s, &ancestor.span_id))
    }

    /// Whether `span` has `ancestor` among its parents.
    pub fn descends(&self, span: &Span, ancestor: &str) -> bool {
        let mut parent = span.parent_span_id.clone();
        for _ in 0..64 {
            if parent.is_empty() {
                return false;
            }
            if parent == ancestor {
                return true;
            }
            match self.spans.iter().find(|s| s.span_id == parent) {
                Some(p) => parent = p.parent_span_id.clone(),
                None => return false,
            }
        }
        false
    }
}
