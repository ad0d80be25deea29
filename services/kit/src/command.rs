//! Commands between services: request/reply over core NATS on
//! `<root>.cmd.<service>.<command>`, protobuf both ways, a queue group per service so
//! replicas share the load, a deadline on every call, and a typed error in the reply.
//!
//! A command is its request type ([`helpdesk_proto::Command`]); the owning service
//! answers it with [`Parts::command`](crate::service::Parts::command) and an
//! [`Answer`]; others [`call`] it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use helpdesk_proto::Command;
use helpdesk_proto::common::v1::{CommandError, CommandReply, command_reply};
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};

use crate::bus::Bus;
use crate::error::{Error, Result};

/// Most requests one process answers at once per command.
const CONCURRENT: usize = 32;

/// How a service answers command `C`.
pub trait Answer<C: Command>: Send + Sync + 'static {
    /// The reply to `request`; an error goes back to the caller with its code.
    fn answer(&self, request: C) -> impl Future<Output = Result<C::Response>> + Send;
}

/// Calls command `C` and waits at most `deadline` for its reply. No replica
/// listening, or none answering in time, is UNAVAILABLE; the answering service's
/// error comes back with its code and message.
pub async fn call<C: Command>(bus: &Bus, request: &C, deadline: Duration) -> Result<C::Response> {
    let subject = bus.subjects.command(C::SERVICE, C::COMMAND);
    let mut headers = async_nats::HeaderMap::new();
    let (traceparent, tracestate) = crate::telemetry::current_trace_headers();
    headers.insert(crate::bus::headers::TRACEPARENT, traceparent.as_str());
    if let Some(state) = &tracestate {
        headers.insert(crate::bus::headers::TRACESTATE, state.as_str());
    }
    let sent = async_nats::Request::new()
        .payload(request.encode_to_vec().into())
        .headers(headers)
        .timeout(Some(deadline));
    let reply = bus.client.send_request(subject, sent).await.map_err(|e| {
        use async_nats::client::RequestErrorKind;
        let why = match e.kind() {
            RequestErrorKind::NoResponders => "is not running",
            RequestErrorKind::TimedOut => "did not answer in time",
            _ => "cannot be reached",
        };
        Error::Unavailable(format!("the {} service {why}", C::SERVICE))
    })?;
    let reply = CommandReply::decode(reply.payload).map_err(|e| {
        Error::Unavailable(format!("the {} service answered garbage: {e}", C::SERVICE))
    })?;
    match reply.result {
        Some(command_reply::Result::Response(bytes)) => C::Response::decode(bytes.as_slice())
            .map_err(|e| {
                Error::Unavailable(format!("the {} service answered garbage: {e}", C::SERVICE))
            }),
        Some(command_reply::Result::Error(e)) => {
            Err(Error::Status(Status::new(Code::from(e.code), e.message)))
        }
        None => Err(Error::Unavailable(format!(
            "the {} service answered nothing",
            C::SERVICE
        ))),
    }
}

/// Answers command `C` with `handler` until `stop`: subscribed in the queue group of
/// the owning service, at most [`CONCURRENT`] requests at once. Resubscribes when the
/// subscription ends while the service runs.
pub(crate) async fn serve<C: Command, H: Answer<C>>(
    bus: Bus,
    handler: Arc<H>,
    stop: CancellationToken,
) {
    let subject = bus.subjects.command(C::SERVICE, C::COMMAND);
    let group = C::SERVICE.to_string();
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENT));
    while !stop.is_cancelled() {
        let mut sub = match bus
            .client
            .queue_subscribe(subject.clone(), group.clone())
            .await
        {
            Ok(sub) => sub,
            Err(e) => {
                tracing::warn!(error = %e, %subject, "cannot subscribe to a command; retrying");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let msg = tokio::select! {
                _ = stop.cancelled() => {
                    let _ = sub.unsubscribe().await;
                    return;
                }
                msg = sub.next() => msg,
            };
            let Some(msg) = msg else { break };
            let Some(reply_to) = msg.reply.clone() else {
                continue; // a publish, not a request: nobody to answer
            };
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (bus, handler) = (bus.clone(), handler.clone());
            tokio::spawn(async move {
                let span = tracing::info_span!("command", command = C::COMMAND);
                if let Some(headers) = &msg.headers {
                    crate::telemetry::set_parent_from(&span, |k| {
                        headers.get(k).map(|v| v.as_str())
                    });
                }
                let result = match C::decode(msg.payload) {
                    Ok(request) => {
                        tracing::Instrument::instrument(handler.answer(request), span).await
                    }
                    Err(e) => Err(Error::Status(Status::invalid_argument(format!(
                        "not a {}: {e}",
                        C::full_name()
                    )))),
                };
                let reply = CommandReply {
                    result: Some(match result {
                        Ok(response) => command_reply::Result::Response(response.encode_to_vec()),
                        Err(e) => {
                            let status = Status::from(e);
                            command_reply::Result::Error(CommandError {
                                code: status.code() as i32,
                                message: status.message().to_string(),
                            })
                        }
                    }),
                };
                if let Err(e) = bus
                    .client
                    .publish(reply_to, reply.encode_to_vec().into())
                    .await
                {
                    tracing::warn!(error = %e, "cannot send a command's reply");
                }
                drop(permit);
            });
        }
        tracing::warn!(%subject, "command subscription ended; subscribing again");
    }
}
