//! `rpc.server.call.duration`: how long each gRPC call took, by service, method and
//! status code (OpenTelemetry's RPC semantic conventions), measured from the request
//! to the end of the answer (a stream's whole life). Health probes and reflection are
//! not counted.

use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;

static DURATION: LazyLock<Histogram<f64>> = LazyLock::new(|| {
    crate::metrics::meter()
        .f64_histogram("rpc.server.call.duration")
        .with_unit("s")
        .with_description("Duration of gRPC calls answered, by service, method and status code")
        .with_boundaries(crate::metrics::SECONDS_BUCKETS.to_vec())
        .build()
});

/// One call being measured.
struct Call {
    service: String,
    method: String,
    started: Instant,
}

impl Call {
    /// The call to `path` (`/<service>/<method>`), unless it is a probe.
    fn of(path: &str) -> Option<Self> {
        if path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.") {
            return None;
        }
        let (service, method) = path.trim_start_matches('/').split_once('/')?;
        Some(Self {
            service: service.to_string(),
            method: method.to_string(),
            started: Instant::now(),
        })
    }

    fn record(self, code: i64) {
        DURATION.record(
            self.started.elapsed().as_secs_f64(),
            &[
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", self.service),
                KeyValue::new("rpc.method", self.method),
                KeyValue::new("rpc.grpc.status_code", code),
            ],
        );
    }
}

fn status(headers: &http::HeaderMap) -> Option<i64> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Measures every call of the service it wraps.
#[derive(Clone)]
pub(crate) struct Metered<S>(pub(crate) S);

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Metered<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = Call::of(request.uri().path());
        let answer = self.0.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let Some(call) = call else {
                return Ok(response);
            };
            // An error answer carries its status in the headers (trailers-only).
            if let Some(code) = status(response.headers()) {
                call.record(code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                tonic::body::Body::new(MeteredBody {
                    body,
                    call: Some(call),
                })
            }))
        })
    }
}

/// An answer's body, recording the call when its trailers (the status) go out, or
/// as CANCELLED when the caller goes away first.
struct MeteredBody {
    body: tonic::body::Body,
    call: Option<Call>,
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status)
                    && let Some(call) = self.call.take()
                {
                    call.record(code);
                }
            }
            Poll::Ready(None) => {
                if let Some(call) = self.call.take() {
                    call.record(0);
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.record(i64::from(i32::from(tonic::Code::Cancelled)));
        }
    }
}
