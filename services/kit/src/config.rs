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

/// Settings every service shares. A service's own settings are a section named
/// after it (`[conversation]`), loaded by [`load_section`]; other tables at the top
/// level are other services' sections and are left to them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
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
    /// Copies JetStream keeps of the event and dead-letter streams (1 for a single
    /// server, 3 in a three-node cluster); consumers follow their stream.
    pub stream_replicas: usize,
    /// Address the gRPC server binds.
    pub grpc_addr: SocketAddr,
    /// Address of the admin HTTP server (`/metrics` in Prometheus text), if any.
    pub admin_addr: Option<SocketAddr>,
    /// HMAC-SHA256 key for JWTs (at least 32 bytes).
    pub jwt_secret: String,
    /// Outbox relay settings.
    pub outbox: OutboxConfig,
    /// Consumer settings.
    pub consumer: ConsumerConfig,
    /// Timer worker settings.
    pub timers: TimerConfig,
    /// Live stream settings.
    pub live: LiveConfig,
}

/// Live stream limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    /// Bytes of messages buffered for one stream; a client that falls further behind
    /// is ended with RESOURCE_EXHAUSTED.
    pub buffer_bytes: usize,
    /// Live streams one caller (account and subject) may hold open at once.
    pub max_streams_per_caller: usize,
    /// Live streams one client connection may hold open at once. The HTTP/2 limit of
    /// concurrent streams per connection is this plus room for ordinary calls.
    pub max_streams_per_connection: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            buffer_bytes: 4 * 1024 * 1024,
            max_streams_per_caller: 16,
            max_streams_per_connection: 1_000,
        }
    }
}

/// Outbox relay tuning.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Rows published per batch (at most 4,096: the NATS client allows 5,000
    /// acknowledgements in flight).
    pub batch_size: i64,
    /// Fallback poll interval when no notification arrives.
    pub poll_interval_ms: u64,
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
    /// How long a consumer remembers the ids of the events it applied (its
    /// de-duplication inbox); keep it longer than the stream keeps events.
    pub inbox_retention_hours: u64,
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
            stream_replicas: 1,
            grpc_addr: SocketAddr::from(([0, 0, 0, 0], 50051)),
            admin_addr: None,
            jwt_secret: String::new(),
            outbox: OutboxConfig::default(),
            consumer: ConsumerConfig::default(),
            timers: TimerConfig::default(),
            live: LiveConfig::default(),
        }
    }
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            batch_size: 512,
            poll_interval_ms: 1000,
        }
    }
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            max_deliver: 8,
            ack_wait_secs: 30,
            batch: 64,
            inbox_retention_hours: 24 * 8,
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

/// A figment error as a [`ConfigError`] naming the key under `section`.
fn key_error(section: &str, e: figment::Error) -> ConfigError {
    let path = e.path.join(".");
    let key = match (section.is_empty(), path.is_empty()) {
        (true, true) => "<root>".to_string(),
        (true, false) => path,
        (false, true) => section.to_string(),
        (false, false) => format!("{section}.{path}"),
    };
    ConfigError::new(key, e.kind.to_string())
}

/// Loads the settings section `[<name>]`: its defaults, then the section of the
/// `HELPDESK_CONFIG` TOML file, then `HELPDESK_<NAME>__<KEY>` variables; validated
/// with errors naming `<name>.<key>`.
pub fn load_section<S: crate::service::Settings>(name: &str) -> Result<S, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(S::default()));
    if let Ok(path) = std::env::var("HELPDESK_CONFIG") {
        figment = figment.merge(Figment::from(Toml::file_exact(path)).focus(name));
    }
    let prefix = format!("HELPDESK_{}__", name.to_ascii_uppercase());
    figment = figment.merge(Env::prefixed(&prefix).split("__"));
    let settings: S = figment.extract().map_err(|e| key_error(name, e))?;
    settings.validate().map_err(|e| ConfigError {
        key: format!("{name}.{}", e.key),
        reason: e.reason,
    })?;
    Ok(settings)
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
    "stream_replicas",
    "grpc_addr",
    "admin_addr",
    "jwt_secret",
    "outbox",
    "consumer",
    "timers",
    "live",
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
        // Unknown plain keys are mistakes; unknown tables are services' sections.
        let top: figment::value::Dict = figment.extract().map_err(|e| key_error("", e))?;
        if let Some((key, _)) = top.iter().find(|(k, v)| {
            !ENV_KEYS.contains(&k.as_str()) && !matches!(v, figment::value::Value::Dict(..))
        }) {
            return Err(ConfigError::new(key.clone(), "unknown key"));
        }
        let config: Self = figment.extract().map_err(|e| key_error("", e))?;
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
        if self.consumer.inbox_retention_hours < 1 {
            return Err(ConfigError::new(
                "consumer.inbox_retention_hours",
                "must be at least 1",
            ));
        }
        if !(1..=5).contains(&self.stream_replicas) {
            return Err(ConfigError::new("stream_replicas", "must be 1..=5"));
        }
        if self.duplicate_window_secs < 60 {
            return Err(ConfigError::new(
                "duplicate_window_secs",
                "must be at least 60",
            ));
        }
        // Below the NATS client's limit of 5,000 acknowledgements in flight.
        if self.outbox.batch_size < 1 || self.outbox.batch_size > 4_096 {
            return Err(ConfigError::new("outbox.batch_size", "must be 1..=4096"));
        }
        if self.consumer.max_deliver < 1 {
            return Err(ConfigError::new(
                "consumer.max_deliver",
                "must be at least 1",
            ));
        }
        if !(64 * 1024..=1024 * 1024 * 1024).contains(&self.live.buffer_bytes) {
            return Err(ConfigError::new(
                "live.buffer_bytes",
                "must be 65536..=1073741824",
            ));
        }
        if !(1..=10_000).contains(&self.live.max_streams_per_caller) {
            return Err(ConfigError::new(
                "live.max_streams_per_caller",
                "must be 1..=10000",
            ));
        }
        if !(1..=100_000).contains(&self.live.max_streams_per_connection) {
            return Err(ConfigError::new(
                "live.max_streams_per_connection",
                "must be 1..=100000",
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

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Section {
        limit: u32,
        name: String,
    }

    impl crate::service::Settings for Section {
        fn validate(&self) -> Result<(), ConfigError> {
            if self.limit > 10 {
                return Err(ConfigError::new("limit", "at most 10"));
            }
            Ok(())
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail returns its own error type
    fn a_section_layers_file_then_env_and_names_its_keys() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "helpdesk.toml",
                "jwt_secret = \"0123456789abcdef0123456789abcdef\"\n\
                 database_url = \"postgres://localhost/x\"\n\
                 [svc]\nlimit = 3\nname = \"from file\"\n\
                 [other]\nanything = true\n",
            )?;
            jail.set_env("HELPDESK_CONFIG", "helpdesk.toml");
            jail.set_env("HELPDESK_SVC__NAME", "from env");
            let section: Section = load_section("svc").map_err(|e| e.to_string())?;
            assert_eq!(
                section,
                Section {
                    limit: 3,
                    name: "from env".into()
                }
            );
            // The shared settings ignore the services' tables.
            ServiceConfig::load(50051).map_err(|e| e.to_string())?;

            jail.set_env("HELPDESK_SVC__LIMIT", "11");
            let err = load_section::<Section>("svc").expect_err("over the limit");
            assert_eq!(err.key, "svc.limit");
            jail.set_env("HELPDESK_SVC__LIMIT", "lots");
            let err = load_section::<Section>("svc").expect_err("not a number");
            assert_eq!(err.key, "svc.limit");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail returns its own error type
    fn an_unknown_plain_key_is_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "helpdesk.toml",
                "jwt_secret = \"0123456789abcdef0123456789abcdef\"\n\
                 database_url = \"postgres://localhost/x\"\n\
                 databse_max_connections = 4\n",
            )?;
            jail.set_env("HELPDESK_CONFIG", "helpdesk.toml");
            let err = ServiceConfig::load(50051).expect_err("misspelt key");
            assert_eq!(err.key, "databse_max_connections");
            Ok(())
        });
    }
}
