//! NATS JetStream: connection, subject layout, stream setup, CloudEvents headers.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};

use crate::config::ServiceConfig;

/// CloudEvents binary-mode header names (and the NATS dedup header).
pub mod headers {
    /// `1.0`.
    pub const SPECVERSION: &str = "ce-specversion";
    /// Event id (UUIDv7), equal to `Nats-Msg-Id`.
    pub const ID: &str = "ce-id";
    /// Protobuf full name of the body, e.g. `helpdesk.conversation.v1.MessageCreated`.
    pub const TYPE: &str = "ce-type";
    /// Producing service, e.g. `/helpdesk/conversation`.
    pub const SOURCE: &str = "ce-source";
    /// RFC 3339 time of the change.
    pub const TIME: &str = "ce-time";
    /// The aggregate id the event is about (conversation id, contact id…).
    pub const SUBJECT: &str = "ce-subject";
    /// `application/protobuf`.
    pub const CONTENT_TYPE: &str = "content-type";
    /// JetStream de-duplication key.
    pub const NATS_MSG_ID: &str = "Nats-Msg-Id";
    /// W3C trace context.
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C trace state.
    pub const TRACESTATE: &str = "tracestate";
    /// Why a message was dead-lettered.
    pub const DLQ_REASON: &str = "helpdesk-dlq-reason";
    /// Which consumer dead-lettered it.
    pub const DLQ_CONSUMER: &str = "helpdesk-dlq-consumer";
    /// The subject it was originally published on.
    pub const DLQ_SUBJECT: &str = "helpdesk-dlq-subject";
}

/// A bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Could not connect.
    #[error("connecting to NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
    /// A JetStream management or publish call failed.
    #[error("jetstream: {0}")]
    JetStream(String),
}

impl BusError {
    pub(crate) fn js(e: impl std::fmt::Display) -> Self {
        Self::JetStream(e.to_string())
    }
}

/// True when `s` is a non-empty NATS subject token of `[A-Za-z0-9_-]`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Subject layout under one configurable root.
#[derive(Debug, Clone)]
pub struct Subjects {
    root: String,
}

impl Subjects {
    /// Subjects under `root` (normally `helpdesk`).
    pub fn new(root: impl Into<String>) -> Self {
        Self { root: root.into() }
    }

    /// The root token.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// `<root>.evt.<account>.<kind>` where kind is `<aggregate>.<event>`.
    pub fn event(&self, account_id: &str, kind: &str) -> String {
        format!("{}.evt.{account_id}.{kind}", self.root)
    }

    /// `<root>.evt.>`: everything the event stream holds.
    pub fn all_events(&self) -> String {
        format!("{}.evt.>", self.root)
    }

    /// `<root>.evt.*.<kind>`: one kind of event from every account.
    pub fn event_kind_any_account(&self, kind: &str) -> String {
        format!("{}.evt.*.{kind}", self.root)
    }

    /// `<root>.evt.<account>.>`: every event of one account.
    pub fn account_events(&self, account_id: &str) -> String {
        format!("{}.evt.{account_id}.>", self.root)
    }

    /// `<root>.live.<account>.<what>`: ephemeral, never stored (typing indicators).
    pub fn live(&self, account_id: &str, what: &str) -> String {
        format!("{}.live.{account_id}.{what}", self.root)
    }

    /// `<root>.cmd.<service>.<command>`: request/reply between services.
    pub fn command(&self, service: &str, command: &str) -> String {
        format!("{}.cmd.{service}.{command}", self.root)
    }

    /// `<root>.dlq.<consumer>`: where poison events are parked.
    pub fn dead_letter(&self, consumer: &str) -> String {
        format!("{}.dlq.{consumer}", self.root)
    }

    /// Splits an event subject into `(account_id, kind)`.
    pub fn parse_event<'a>(&self, subject: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = subject
            .strip_prefix(self.root.as_str())?
            .strip_prefix(".evt.")?;
        let (account, kind) = rest.split_once('.')?;
        Some((account, kind))
    }
}

/// A connected bus: core NATS client, JetStream context and the subject layout.
#[derive(Clone)]
pub struct Bus {
    /// Core NATS client (request/reply, live subjects).
    pub client: async_nats::Client,
    /// JetStream context.
    pub js: jetstream::Context,
    /// Subject layout.
    pub subjects: Subjects,
    /// Event stream name.
    pub stream_name: String,
}

impl Bus {
    /// Connects (retrying in the background if NATS is not up yet) and ensures the
    /// event and dead-letter streams exist.
    pub async fn connect(config: &ServiceConfig, client_name: &str) -> Result<Self, BusError> {
        let client = connect_options(&config.nats_url)?
            .name(client_name)
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            // Back within half a second of the server: the outbox relay and the
            // consumers resume with it.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((50u64 << attempts.min(4)).min(500))
            })
            .connect(config.nats_url.as_str())
            .await?;
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .build(client.clone());
        let bus = Self {
            client,
            js,
            subjects: Subjects::new(&config.subject_root),
            stream_name: config.stream_name.clone(),
        };
        bus.ensure_streams(config).await?;
        Ok(bus)
    }

    /// Name of the stream that parks dead letters.
    pub fn dead_letter_stream(&self) -> String {
        format!("{}_DLQ", self.stream_name)
    }

    /// Creates the event stream and the dead-letter stream, or brings existing ones to
    /// the configured settings (age, duplicate window, replicas): a changed setting
    /// applies on the next start.
    pub async fn ensure_streams(&self, config: &ServiceConfig) -> Result<(), BusError> {
        let events = stream::Config {
            name: self.stream_name.clone(),
            subjects: vec![self.subjects.all_events()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            max_age: config.event_max_age(),
            duplicate_window: Duration::from_secs(config.duplicate_window_secs),
            num_replicas: config.stream_replicas,
            ..Default::default()
        };
        self.create_or_update(events).await?;
        let dlq = stream::Config {
            name: self.dead_letter_stream(),
            subjects: vec![format!("{}.dlq.>", self.subjects.root())],
            storage: stream::StorageType::File,
            max_age: Duration::from_secs(30 * 24 * 3600),
            num_replicas: config.stream_replicas,
            ..Default::default()
        };
        self.create_or_update(dlq).await
    }

    async fn create_or_update(&self, config: stream::Config) -> Result<(), BusError> {
        // Several services start at once; a lost creation race is fine.
        for attempt in 0..5 {
            match self.js.create_or_update_stream(config.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) if attempt < 4 => {
                    tracing::debug!(error = %e, stream = %config.name, "stream setup retry");
                    tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                }
                Err(e) => return Err(BusError::js(e)),
            }
        }
        Ok(())
    }
}

/// Options carrying the credentials embedded in a NATS URL (`nats://user:pass@host`
/// or `nats://token@host`), which the client would otherwise not send.
fn connect_options(url: &str) -> Result<async_nats::ConnectOptions, BusError> {
    let addr: async_nats::ServerAddr = url
        .parse()
        .map_err(|e| BusError::JetStream(format!("invalid nats_url: {e}")))?;
    Ok(match (addr.username(), addr.password()) {
        (Some(user), Some(pass)) => {
            async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into())
        }
        (Some(token), None) => async_nats::ConnectOptions::with_token(token.into()),
        _ => async_nats::ConnectOptions::new(),
    })
}

/// Reads a header as a string.
pub fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers?.get(name).map(|v| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_subjects_put_the_account_first() {
        let s = Subjects::new("helpdesk");
        assert_eq!(
            s.event("acme", "conversation.created"),
            "helpdesk.evt.acme.conversation.created"
        );
        assert_eq!(
            s.parse_event("helpdesk.evt.acme.message.created"),
            Some(("acme", "message.created"))
        );
        assert_eq!(s.parse_event("other.evt.acme.message.created"), None);
    }

    #[test]
    fn tokens_reject_wildcards_and_dots() {
        assert!(is_token("acme-1_x"));
        assert!(!is_token("a.b"));
        assert!(!is_token("*"));
        assert!(!is_token(">"));
        assert!(!is_token(""));
    }
}
