//! gRPC server bootstrap (health, reflection, grpc-web, CORS, trace context,
//! graceful shutdown) and the shared shapes of error replies.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::{Code, Status};
use tonic_health::ServingStatus;
use tonic_types::{ErrorDetails, StatusExt};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::trace::TraceLayer;

/// Serves `routes` plus `grpc.health.v1` and reflection on `listener` until
/// `shutdown`; then health turns NOT_SERVING, new calls are refused and in-flight
/// calls finish. `service_names` are reported SERVING while up.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    service_names: &[&str],
    streams_per_connection: u32,
    shutdown: CancellationToken,
    dependencies: Option<Dependencies>,
) -> Result<(), tonic::transport::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in service_names.iter().chain(std::iter::once(&"")) {
        health
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let database_down = Arc::new(AtomicBool::new(false));
    if let Some(deps) = dependencies {
        let names: Vec<String> = service_names.iter().map(|s| s.to_string()).collect();
        tokio::spawn(watch_dependencies(
            deps,
            health.clone(),
            names,
            database_down.clone(),
            shutdown.clone(),
        ));
    }
    let mut routes = routes.add_service(health_service);
    // Both reflection versions (grpcurl and Postman speak v1; grpcio-reflection, older
    // grpcurl and grpc_cli speak v1alpha), listing only what this port serves.
    match reflection(service_names).build_v1() {
        Ok(v1) => routes = routes.add_service(v1),
        Err(e) => tracing::warn!(error = %e, "reflection v1 disabled"),
    }
    match reflection(service_names).build_v1alpha() {
        Ok(v1alpha) => routes = routes.add_service(v1alpha),
        Err(e) => tracing::warn!(error = %e, "reflection v1alpha disabled"),
    }
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_headers(Any)
        .allow_methods(Any)
        .expose_headers(Any)
        .max_age(Duration::from_secs(3600));
    let trace = TraceLayer::new_for_grpc()
        .make_span_with(request_span)
        .on_response(
            |response: &http::Response<_>, _latency: Duration, span: &tracing::Span| {
                // A trailers-only answer (every error) carries its status here.
                record_status(span, response.headers());
            },
        )
        .on_eos(
            |trailers: Option<&http::HeaderMap>, _duration: Duration, span: &tracing::Span| {
                if let Some(trailers) = trailers {
                    record_status(span, trailers);
                }
            },
        );
    let names: Vec<String> = service_names.iter().map(|s| s.to_string()).collect();
    let stopping = async move {
        shutdown.cancelled().await;
        for name in names.iter().map(String::as_str).chain(std::iter::once("")) {
            health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
    };
    // A call that wrote events wakes the outbox relay once it has answered (its
    // transaction has committed by then).
    let wake = tower::util::MapFutureLayer::new(|call| async move {
        let (response, enqueued) = crate::outbox::tracked(call).await;
        if enqueued {
            crate::outbox::wake();
        }
        response
    });
    // A request that is not valid protobuf (e.g. a string field that is not UTF-8)
    // is the caller's fault: INVALID_ARGUMENT, with prost's description naming the
    // field, rather than tonic's INTERNAL.
    let undecodable =
        tower::util::MapResponseLayer::new(|mut response: http::Response<tonic::body::Body>| {
            let headers = response.headers_mut();
            let undecodable = headers.get("grpc-status").is_some_and(|s| s == "13")
                && headers
                    .get("grpc-message")
                    .and_then(|m| m.to_str().ok())
                    .is_some_and(|m| m.starts_with("failed%20to%20decode%20Protobuf"));
            if undecodable {
                headers.insert("grpc-status", http::HeaderValue::from_static("3"));
            }
            response
        });
    tonic::transport::Server::builder()
        // Headers up to 1 MiB are read (the default 16 KiB makes the connection fail
        // for every call on it); an oversized token is then UNAUTHENTICATED alone.
        .http2_max_header_list_size(1024 * 1024)
        .max_concurrent_streams(streams_per_connection)
        .accept_http1(true)
        .layer(cors)
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(trace)
        .layer(wake)
        .layer(undecodable)
        .layer(tower::layer::layer_fn(crate::calls::Metered))
        .layer(tower::layer::layer_fn(move |inner| Guarded {
            inner,
            database_down: database_down.clone(),
        }))
        .add_routes(routes)
        .serve_with_incoming_shutdown(tokio_stream_from(listener), stopping)
        .await
}

/// What a service cannot serve without: its database and its broker.
#[derive(Clone)]
pub struct Dependencies {
    pub pool: sqlx::PgPool,
    pub nats: async_nats::Client,
}

/// How often the dependencies are checked, and how many failed checks in a row turn
/// health NOT_SERVING (a short grace: one lost round trip is not an outage).
const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBES_FAILED_BEFORE_NOT_SERVING: u32 = 2;

/// Keeps health NOT_SERVING while the database or the broker is unreachable and
/// SERVING again once both answer, until `shutdown`.
async fn watch_dependencies(
    deps: Dependencies,
    health: tonic_health::server::HealthReporter,
    names: Vec<String>,
    database_down: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let (mut failed, mut database_failed) = (0u32, 0u32);
    let mut serving = true;
    let mut probe = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(PROBE_EVERY) => {}
        }
        let database = probe_database(&deps.pool, &mut probe).await;
        let broker = deps.nats.connection_state() == async_nats::connection::State::Connected;
        failed = if database && broker { 0 } else { failed + 1 };
        database_failed = if database { 0 } else { database_failed + 1 };
        database_down.store(
            database_failed >= PROBES_FAILED_BEFORE_NOT_SERVING,
            Ordering::Relaxed,
        );
        let now = failed < PROBES_FAILED_BEFORE_NOT_SERVING;
        if now != serving && !shutdown.is_cancelled() {
            serving = now;
            let status = if now {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            tracing::warn!(
                database,
                broker,
                serving = now,
                "dependencies changed: health follows"
            );
            for name in names.iter().map(String::as_str).chain(std::iter::once("")) {
                health.set_service_status(name, status).await;
            }
        }
    }
}

/// Whether the database answers, on a connection of the probe's own (kept between
/// probes): a pool whose connections are all busy under load is not an unreachable
/// database.
async fn probe_database(pool: &sqlx::PgPool, conn: &mut Option<sqlx::PgConnection>) -> bool {
    use sqlx::Connection;
    let answered = tokio::time::timeout(PROBE_EVERY, async {
        let open = match conn {
            Some(open) => open,
            None => conn.insert(sqlx::PgConnection::connect_with(&pool.connect_options()).await?),
        };
        open.ping().await
    })
    .await
    .is_ok_and(|r| r.is_ok());
    if !answered {
        // Opened again at the next probe.
        *conn = None;
    }
    answered
}

/// Answers UNAVAILABLE at once, without running the call, while the database is known
/// to be unreachable (the dependency watcher's probes failed): a caller learns "down,
/// retry" immediately instead of after a pool timeout. Health and reflection pass.
#[derive(Clone)]
struct Guarded<S> {
    inner: S,
    database_down: Arc<AtomicBool>,
}

type Answer = http::Response<tonic::body::Body>;

impl<S, B> tower::Service<http::Request<B>> for Guarded<S>
where
    S: tower::Service<http::Request<B>, Response = Answer> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Answer;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Answer, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let probe = path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.");
        if !probe && self.database_down.load(Ordering::Relaxed) {
            let refused = Status::unavailable("the database is unreachable; try again shortly");
            return Box::pin(async move { Ok(refused.into_http()) });
        }
        Box::pin(self.inner.call(request))
    }
}

/// A reflection builder that knows every helpdesk type (so any message can be
/// described) but lists only `service_names`, health and reflection itself.
fn reflection(service_names: &[&str]) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(helpdesk_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .include_reflection_service(false);
    for name in service_names.iter().chain(&[
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]) {
        builder = builder.with_service_name(*name);
    }
    builder
}

fn tokio_stream_from(
    listener: TcpListener,
) -> impl futures::Stream<Item = Result<tokio::net::TcpStream, std::io::Error>> {
    futures::stream::unfold(listener, |listener| async move {
        let next = listener.accept().await.map(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        });
        Some((next, listener))
    })
}

/// One bad field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Field path, e.g. `content` or `contact.email`.
    pub field: String,
    /// What is wrong.
    pub description: String,
}

/// Collects field violations while validating a request.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation of `field`.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Records a violation when `bad` holds.
    pub fn check(&mut self, bad: bool, field: &str, description: &str) {
        if bad {
            self.add(field, description);
        }
    }

    /// How many were recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when none were recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when none were recorded, else INVALID_ARGUMENT with every field.
    pub fn into_result(self) -> Result<(), Status> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(invalid_argument(self.0))
        }
    }
}

/// INVALID_ARGUMENT naming each field in the message and in `google.rpc.BadRequest`.
pub fn invalid_argument(violations: Vec<FieldViolation>) -> Status {
    let message = violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    let mut details = ErrorDetails::new();
    for v in &violations {
        details.add_bad_request_violation(v.field.clone(), v.description.clone());
    }
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid argument: {message}"),
        details,
    )
}

/// INVALID_ARGUMENT for a single field.
pub fn invalid_field(field: &str, description: &str) -> Status {
    invalid_argument(vec![FieldViolation {
        field: field.into(),
        description: description.into(),
    }])
}

/// The field names carried in a status's `google.rpc.BadRequest` detail.
pub fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// INTERNAL with a generic message; the cause is logged, never returned.
pub fn internal(cause: &dyn std::fmt::Display) -> Status {
    tracing::error!(error = %cause, "internal error");
    Status::internal("internal error")
}

/// The span of one call, with OpenTelemetry's RPC attributes (`rpc.system`,
/// `rpc.service`, `rpc.method`; `rpc.grpc.status_code` and the span status once
/// answered) and the caller's trace context. Health probes and reflection are not
/// customer actions: they get no span, so no trace of their own.
fn request_span<B>(req: &http::Request<B>) -> tracing::Span {
    let path = req.uri().path();
    if path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.") {
        return tracing::Span::none();
    }
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    let span = tracing::info_span!(
        "grpc.request",
        otel.name = %format!("{service}/{method}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        rpc.grpc.status_code = tracing::field::Empty,
    );
    crate::telemetry::set_parent_from(&span, |k| {
        req.headers().get(k).and_then(|v| v.to_str().ok())
    });
    span
}

/// Records a call's `grpc-status` on its span; the span is an error for the codes
/// that mean the server failed (OpenTelemetry's rule for server spans), not for the
/// caller's mistakes.
fn record_status(span: &tracing::Span, headers: &http::HeaderMap) {
    let Some(code) = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return;
    };
    span.record("rpc.grpc.status_code", code);
    let server_fault = matches!(
        Code::from(code),
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    );
    if server_fault {
        span.record("otel.status_code", "ERROR");
    }
}
