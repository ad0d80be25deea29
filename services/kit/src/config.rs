//! Layered configuration: built-in defaults, then an optional TOML file
//! (`HELPDESK_CONFIG`), then `HELPDESK_…` environment variables (nested keys use
//! `__`, e.g. `HELPDESK_OUTBOX__BATCH_SIZE`). Validated at start with an error naming
//! the bad key.

use std::net::SocketAddr;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// A configuration key was missing or invalid.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {reason}")]
pub struct ConfigError {
    /// Key as written in TOML (`jwt_secret`, `outbox.batch_size`).
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// Builds an error for `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Settings every service shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// PostgreSQL URL; the service works in its own schema of that database.
    pub database_url: String,
    /// Maximum connections in the pool.
    pub database_max_connections: u32,
    /// NATS URL (JetStream must be enabled).
    pub nats_url: String,
    /// First token of every subject (`<root>.evt.…`, `<root>.cmd.…`).
    pub subject_root: String,
    /// Name of the JetStream stream that holds `<root>.evt.>`.
    pub stream_name: String,
    /// How long the stream keeps events.
    pub event_max_age_hours: u64,
    /// JetStream duplicate window; must exceed the outbox relay's retry span.
    pub duplicate_window_secs: u64,
    /// Address the gRPC server binds.
    pub grpc_addr: SocketAddr,
    /// HMAC-SHA256 key for JWTs (at least 32 bytes).
    pub jwt_secret: String,
    /// Lifetime of visitor tokens issued by StartConversation.
    pub visitor_token_ttl_hours: u64,
    /// Outbox relay settings.
    pub outbox: OutboxConfig,
    /// Consumer settings.
    pub consumer: ConsumerConfig,
    /// Timer worker settings.
    pub timers: TimerConfig,
}

/// Outbox relay tuning.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Rows published per batch (all in flight at once).
    pub batch_size: i64,
    /// Fallback poll interval when no notification arrives.
    pub poll_interval_ms: u64,
    /// Published rows older than this are deleted.
    pub keep_published_hours: u64,
}

/// Event consumer tuning.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerConfig {
    /// Deliveries before a message is terminated and dead-lettered.
    pub max_deliver: i64,
    /// Time the server waits for an ack before redelivering.
    pub ack_wait_secs: u64,
    /// Messages fetched per pull.
    pub batch: usize,
}

/// Durable timer worker tuning.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimerConfig {
    /// Longest sleep between scans for due timers.
    pub poll_interval_ms: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            database_url: String::new(),
            database_max_connections: 10,
            nats_url: "nats://127.0.0.1:4222".into(),
            subject_root: "helpdesk".into(),
            stream_name: "HELPDESK_EVENTS".into(),
            event_max_age_hours: 24 * 7,
            duplicate_window_secs: 600,
            grpc_addr: SocketAddr::from(([0, 0, 0, 0], 50051)),
            jwt_secret: String::new(),
            visitor_token_ttl_hours: 24,
            outbox: OutboxConfig::default(),
            consumer: ConsumerConfig::default(),
            timers: TimerConfig::default(),
        }
    }
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            batch_size: 512,
            poll_interval_ms: 1000,
            keep_published_hours: 24,
        }
    }
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            max_deliver: 8,
            ack_wait_secs: 30,
            batch: 64,
        }
    }
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1000,
        }
    }
}

/// Top-level keys settable from `HELPDESK_…` variables.
const ENV_KEYS: &[&str] = &[
    "database_url",
    "database_max_connections",
    "nats_url",
    "subject_root",
    "stream_name",
    "event_max_age_hours",
    "duplicate_window_secs",
    "grpc_addr",
    "jwt_secret",
    "visitor_token_ttl_hours",
    "outbox",
    "consumer",
    "timers",
];

impl ServiceConfig {
    /// Loads defaults → `HELPDESK_CONFIG` TOML file → `HELPDESK_…` env, then validates.
    /// `grpc_port` is the service's default port. Plain `DATABASE_URL` and `NATS_URL`
    /// are honoured when the `HELPDESK_` ones are absent.
    pub fn load(grpc_port: u16) -> Result<Self, ConfigError> {
        Self::load_over(Self {
            grpc_addr: SocketAddr::from(([0, 0, 0, 0], grpc_port)),
            ..Self::default()
        })
    }

    /// Like [`ServiceConfig::load`] with `defaults` as the bottom layer (the all-in-one
    /// launcher puts its private NATS / PostgreSQL URLs there, so env still wins).
    pub fn load_over(defaults: Self) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(defaults));
        if let Ok(url) = std::env::var("DATABASE_URL") {
            figment = figment.merge(("database_url", url));
        }
        if let Ok(url) = std::env::var("NATS_URL") {
            figment = figment.merge(("nats_url", url));
        }
        if let Ok(path) = std::env::var("HELPDESK_CONFIG") {
            figment = figment.merge(Toml::file_exact(path));
        }
        // Only keys of this struct: other HELPDESK_ variables (tool paths, test
        // settings) belong to other programs.
        let env = Env::prefixed("HELPDESK_")
            .filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                ENV_KEYS
                    .iter()
                    .any(|k| key == *k || key.starts_with(&format!("{k}__")))
            })
            .split("__");
        let figment = figment.merge(env);
        let config: Self = figment.extract().map_err(|e| {
            let key = e.path.join(".");
            ConfigError::new(
                if key.is_empty() {
                    "<root>".to_string()
                } else {
                    key
                },
                e.kind.to_string(),
            )
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that deserialize but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.database_url.is_empty() {
            return Err(ConfigError::new(
                "database_url",
                "required (HELPDESK_DATABASE_URL)",
            ));
        }
        if !self.database_url.starts_with("postgres://")
            && !self.database_url.starts_with("postgresql://")
        {
            return Err(ConfigError::new(
                "database_url",
                "must be a postgres:// URL",
            ));
        }
        if self.jwt_secret.len() < 32 {
            return Err(ConfigError::new(
                "jwt_secret",
                "required, at least 32 bytes (HELPDESK_JWT_SECRET)",
            ));
        }
        if !crate::bus::is_token(&self.subject_root) {
            return Err(ConfigError::new(
                "subject_root",
                "must be one NATS token of [A-Za-z0-9_-]",
            ));
        }
        if !crate::bus::is_token(&self.stream_name) {
            return Err(ConfigError::new("stream_name", "must be [A-Za-z0-9_-]"));
        }
        if self.duplicate_window_secs < 60 {
            return Err(ConfigError::new(
                "duplicate_window_secs",
                "must be at least 60",
            ));
        }
        if self.outbox.batch_size < 1 || self.outbox.batch_size > 10_000 {
            return Err(ConfigError::new("outbox.batch_size", "must be 1..=10000"));
        }
        if self.consumer.max_deliver < 1 {
            return Err(ConfigError::new(
                "consumer.max_deliver",
                "must be at least 1",
            ));
        }
        if self.database_max_connections < 2 {
            return Err(ConfigError::new(
                "database_max_connections",
                "must be at least 2",
            ));
        }
        Ok(())
    }

    /// The stream's retention.
    pub fn event_max_age(&self) -> Duration {
        Duration::from_secs(self.event_max_age_hours * 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_short_secret_naming_the_key() {
        let config = ServiceConfig {
            database_url: "postgres://localhost/x".into(),
            jwt_secret: "short".into(),
            ..ServiceConfig::default()
        };
        let err = config.validate().expect_err("short secret must fail");
        assert_eq!(err.key, "jwt_secret");
    }

    #[test]
    fn rejects_subject_root_with_dots() {
        let config = ServiceConfig {
            database_url: "postgres://localhost/x".into(),
            jwt_secret: "x".repeat(32),
            subject_root: "a.b".into(),
            ..ServiceConfig::default()
        };
        assert_eq!(
            config.validate().expect_err("dotted root").key,
            "subject_root"
        );
    }
}
