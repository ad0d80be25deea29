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

/// Runs `run` once per (`C`, `account`, `key`): a repeated key gets the response the
/// first run gave, without running again. The key is recorded after `run` succeeds,
/// so a command whose effect commits without its record (the process dying between
/// the two) may run again: give `run` a natural key too where acting twice would show
/// (a message's client id, a ticket's request id).
pub async fn once<C, F, Fut>(
    pool: &sqlx::PgPool,
    account: &str,
    key: &str,
    run: F,
) -> Result<C::Response>
where
    C: Command,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<C::Response>>,
{
    let done: Option<Vec<u8>> = sqlx::query_scalar(
        "SELECT response FROM command_results WHERE command = $1 AND account_id = $2 AND key = $3",
    )
    .bind(C::COMMAND)
    .bind(account)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    if let Some(bytes) = done
        && let Ok(response) = C::Response::decode(bytes.as_slice())
    {
        return Ok(response);
    }
    let response = run().await?;
    sqlx::query(
        "INSERT INTO command_results (command, account_id, key, response) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(C::COMMAND)
    .bind(account)
    .bind(key)
    .bind(response.encode_to_vec())
    .execute(pool)
    .await?;
    Ok(response)
}

/// A bounded id derived from `key` (any length): `<prefix>:` and 40 hex digits of
/// its SHA-256, for a natural key (a message's client id, a ticket's request id) that
/// makes a command's effect happen once per idempotency key.
pub fn derived_id(prefix: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest[..20].iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}:{hex}")
}

/// Most characters of a command's idempotency key.
pub const MAX_KEY_CHARS: usize = 200;

/// The caller a `run_action` command acts as: its account, key and origin checked
/// (INVALID_ARGUMENT naming the field), an admin's rights in the account, acting as
/// the origin's actor and continuing its chain.
pub fn acting_caller(
    account_id: &str,
    key: &str,
    origin: Option<&helpdesk_proto::common::v1::CommandOrigin>,
) -> Result<crate::auth::Caller> {
    let mut v = crate::grpc::Violations::new();
    v.check(account_id.is_empty(), "account_id", "required");
    let chars = key.chars().count();
    v.check(
        chars == 0 || chars > MAX_KEY_CHARS,
        "idempotency_key",
        "1 to 200 characters",
    );
    let actor = origin.and_then(|o| o.actor.as_ref());
    v.check(
        actor.is_none_or(|a| a.id.is_empty()),
        "origin.actor",
        "required",
    );
    v.into_result()?;
    let origin =
        crate::event::Origin::from_command(account_id, origin.unwrap_or(&Default::default()));
    Ok(crate::auth::Caller::acting_for(origin))
}

/// Forgets the answers of idempotent commands older than `hours`, a bounded batch
/// at a time (run beside the inbox's pruning: a key is remembered as long as an
/// event id is).
pub async fn prune_results(pool: &sqlx::PgPool, hours: u64) {
    loop {
        let deleted = sqlx::query(
            "DELETE FROM command_results WHERE ctid IN (
                 SELECT ctid FROM command_results
                 WHERE created_at < now() - make_interval(hours => $1) LIMIT 5000)",
        )
        .bind(i32::try_from(hours).unwrap_or(i32::MAX))
        .execute(pool)
        .await;
        match deleted {
            Ok(r) if r.rows_affected() > 0 => continue,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "pruning command answers failed; will retry");
                return;
            }
        }
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
