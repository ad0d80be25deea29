//! Test support: real NATS and PostgreSQL for every test.
//!
//! The servers come from [`helpdesk_devservers::shared`]: `HELPDESK_TEST_NATS_URL` /
//! `HELPDESK_TEST_DATABASE_URL` when set, else one private `nats-server` and
//! PostgreSQL per machine user that every test process shares and reuses. Each
//! [`TestEnv`] gets its own database and its own subject root and stream, so tests
//! run in parallel without seeing each other.

use std::time::Duration;

use futures::StreamExt;

pub mod http;
pub mod otlp;
pub mod smtp;

use helpdesk_devservers::shared::{Servers, shared_servers};

pub use helpdesk_devservers::shared::OwnedServers;
pub use helpdesk_devservers::{PrivateNats, PrivatePostgres};

use crate::auth::{Claims, JwtKeys, Role};
use crate::config::ServiceConfig;

async fn servers() -> &'static Servers {
    shared_servers()
        .await
        .unwrap_or_else(|e| panic!("test servers: {e}"))
}

/// One test's private slice of the shared servers.
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// NATS URL.
    pub nats_url: String,
    /// URL of this test's own database.
    pub database_url: String,
    /// This test's subject root (`t<random>`).
    pub subject_root: String,
    /// This test's stream name.
    pub stream_name: String,
    /// JWT secret shared by the services under test.
    pub jwt_secret: String,
}

impl TestEnv {
    /// A fresh database, subject root and stream name on the shared servers.
    pub async fn new() -> Self {
        let servers = servers().await;
        Self::with_nats(&servers.nats_url).await
    }

    /// Like [`TestEnv::new`] but against the given NATS (a test's own server).
    pub async fn with_nats(nats_url: &str) -> Self {
        let servers = servers().await;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let db = format!("hd_{id}");
        let admin = sqlx::PgPool::connect(&servers.postgres_url)
            .await
            .expect("connect to test PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let database_url = match servers.postgres_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{db}"),
            None => panic!("test database URL has no database part"),
        };
        Self {
            nats_url: nats_url.to_string(),
            database_url,
            subject_root: format!("t{}", &id[..12]),
            stream_name: format!("T{}_EVENTS", &id[..12]),
            jwt_secret: format!("test-secret-{id}"),
        }
    }

    /// A service configuration for this environment (ephemeral gRPC port, fast polling).
    pub fn service_config(&self) -> ServiceConfig {
        let mut config = ServiceConfig {
            database_url: self.database_url.clone(),
            database_max_connections: 10,
            nats_url: self.nats_url.clone(),
            subject_root: self.subject_root.clone(),
            stream_name: self.stream_name.clone(),
            grpc_addr: "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            jwt_secret: self.jwt_secret.clone(),
            ..ServiceConfig::default()
        };
        config.outbox.poll_interval_ms = 200;
        config.timers.poll_interval_ms = 100;
        config
    }

    /// Keys for this environment's secret.
    pub fn keys(&self) -> JwtKeys {
        JwtKeys::new(self.jwt_secret.as_bytes())
    }

    /// A signed token valid for an hour.
    pub fn token(&self, account: &str, subject: &str, role: Role) -> String {
        self.keys().mint(&Claims::new(
            account,
            subject,
            role,
            chrono::Duration::hours(1),
        ))
    }

    /// A NATS client for this environment.
    pub async fn nats(&self) -> async_nats::Client {
        async_nats::connect(self.nats_url.as_str())
            .await
            .expect("connect to test NATS")
    }
}

/// Polls `check` every 50 ms until it returns `Some` or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A service running in the test process on a test environment.
pub struct Spawned {
    /// The bound gRPC port.
    pub port: u16,
    /// The service's pool (its own schema).
    pub pool: sqlx::PgPool,
    stop: tokio_util::sync::CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl Spawned {
    /// `http://127.0.0.1:<port>`, for a gRPC client.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the service gracefully and waits for it (at most 30 s).
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.handle).await;
    }
}

/// Starts `S` with its default settings on `config` (usually
/// [`TestEnv::service_config`]); panics if it cannot start.
pub async fn spawn<S: crate::Service>(config: ServiceConfig) -> Spawned {
    spawn_with::<S>(config, S::Settings::default()).await
}

/// Starts `S` with `settings` on `config`; panics if it cannot start.
pub async fn spawn_with<S: crate::Service>(
    config: ServiceConfig,
    settings: S::Settings,
) -> Spawned {
    // As in the service binaries: spans get OpenTelemetry context (no exporter).
    std::mem::forget(crate::telemetry::init(&format!("{}-test", S::NAME)));
    let app = crate::Application::<S>::build(config, settings)
        .await
        .unwrap_or_else(|e| panic!("starting the {} service: {e}", S::NAME));
    let (port, pool) = (app.port(), app.pool().clone());
    let stop = tokio_util::sync::CancellationToken::new();
    let token = stop.clone();
    let handle = tokio::spawn(async move {
        if let Err(e) = app.run(token).await {
            panic!("the {} service failed: {e}", S::NAME);
        }
    });
    Spawned {
        port,
        pool,
        stop,
        handle,
    }
}

/// Every event on the test stream under `<root>.evt.<filter>`, waiting until at least
/// `min` have arrived (or 15 s passed).
pub async fn stream_events(
    env: &TestEnv,
    filter: &str,
    min: usize,
) -> Vec<async_nats::jetstream::Message> {
    let js = async_nats::jetstream::new(env.nats().await);
    let stream = js
        .get_stream(&env.stream_name)
        .await
        .expect("stream exists");
    let consumer: async_nats::jetstream::consumer::Consumer<
        async_nats::jetstream::consumer::pull::Config,
    > = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            filter_subject: format!("{}.evt.{filter}", env.subject_root),
            deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::All,
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("ephemeral consumer");
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < deadline {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .expect("fetch");
        while let Some(Ok(m)) = batch.next().await {
            out.push(m);
        }
        if out.len() >= min {
            // One more short fetch to catch anything beyond the minimum.
            let mut extra = consumer
                .fetch()
                .max_messages(1000)
                .expires(Duration::from_millis(300))
                .messages()
                .await
                .expect("fetch");
            while let Some(Ok(m)) = extra.next().await {
                out.push(m);
            }
            break;
        }
    }
    out
}
