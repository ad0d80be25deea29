//! Building and running the conversation service.

use std::sync::Arc;

use helpdesk_kit::CancellationToken;
use helpdesk_kit::auth::{AuthInterceptor, JwtKeys};
use helpdesk_kit::bus::Bus;
use helpdesk_kit::config::{ConsumerConfig, ServiceConfig};
use helpdesk_kit::consumer;
use helpdesk_kit::db;
use helpdesk_kit::outbox::Relay;
use helpdesk_proto::conversation::v1::conversation_service_server::ConversationServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;

pub use helpdesk_kit::app::StartupError;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::consumers::{self, RoutingEvents};
use crate::grpc::Api;
use crate::timers::SnoozeWake;

/// Schema (and service) name.
pub const SCHEMA: &str = "conversation";
/// Default gRPC port.
pub const DEFAULT_PORT: u16 = 50051;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A conversation service with its port bound, ready to run.
pub struct Application {
    listener: TcpListener,
    port: u16,
    api: Api,
    config: ServiceConfig,
}

impl Application {
    /// Connects to PostgreSQL (migrating the schema) and NATS, and binds the port.
    pub async fn build(config: ServiceConfig) -> Result<Self, StartupError> {
        let pool = db::connect_and_migrate(
            &config.database_url,
            SCHEMA,
            config.database_max_connections,
            &MIGRATOR,
        )
        .await?;
        let bus = Bus::connect(&config, "helpdesk-conversation").await?;
        let (listener, port) = helpdesk_kit::app::bind(config.grpc_addr).await?;
        let api = Api {
            pool,
            bus,
            keys: JwtKeys::new(config.jwt_secret.as_bytes()),
            visitor_token_ttl: chrono::Duration::hours(config.visitor_token_ttl_hours as i64),
            shutdown: CancellationToken::new(),
        };
        Ok(Self {
            listener,
            port,
            api,
            config,
        })
    }

    /// The bound gRPC port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The service's database pool (its own schema).
    pub fn pool(&self) -> &PgPool {
        &self.api.pool
    }

    /// Serves until `shutdown`; then health turns NOT_SERVING, in-flight calls and
    /// live streams end, the event consumer finishes the event in hand, the relay
    /// publishes what is pending, and workers stop.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), StartupError> {
        let Self {
            listener,
            api,
            config,
            ..
        } = self;
        let workers = CancellationToken::new();
        let relay = Relay::new(
            api.pool.clone(),
            api.bus.clone(),
            SCHEMA,
            config.outbox.clone(),
        );
        let relay = tokio::spawn(relay.run(workers.clone()));
        let timers = tokio::spawn(helpdesk_kit::timers::run_worker(
            api.pool.clone(),
            Arc::new(SnoozeWake),
            config.timers.clone(),
            workers.clone(),
        ));
        // Stopped before the relay, so the events of its last changes are flushed too.
        let consumer_stop = workers.child_token();
        let consumer = tokio::spawn(run_consumer(
            api.bus.clone(),
            api.pool.clone(),
            config.consumer.clone(),
            consumer_stop.clone(),
        ));
        let streams = api.shutdown.clone();
        let stop_streams = shutdown.clone();
        tokio::spawn(async move {
            stop_streams.cancelled().await;
            streams.cancel();
        });
        let pool = api.pool.clone();
        let bus = api.bus.clone();
        let keys = api.keys.clone();
        let server = ConversationServiceServer::with_interceptor(api, AuthInterceptor::new(keys));
        let name = <ConversationServiceServer<Api> as NamedService>::NAME;
        let served =
            helpdesk_kit::grpc::serve(listener, Routes::new(server), &[name], shutdown).await;
        consumer_stop.cancel();
        let _ = consumer.await;
        workers.cancel();
        let _ = relay.await;
        let _ = timers.await;
        let _ = bus.client.flush().await;
        pool.close().await;
        served.map_err(StartupError::from)
    }
}

/// Runs the routing-event consumer until `shutdown`, starting it again if it stops
/// early (NATS unreachable when setting it up, or its message stream ended).
async fn run_consumer(bus: Bus, pool: PgPool, config: ConsumerConfig, shutdown: CancellationToken) {
    let handler = Arc::new(RoutingEvents);
    loop {
        let result = consumer::run(
            bus.clone(),
            pool.clone(),
            consumers::spec(),
            handler.clone(),
            config.clone(),
            shutdown.clone(),
        )
        .await;
        if shutdown.is_cancelled() {
            return;
        }
        match result {
            Ok(()) => tracing::warn!("event consumer stopped; restarting"),
            Err(e) => tracing::warn!(error = %e, "event consumer failed; restarting"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
}
