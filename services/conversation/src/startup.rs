//! Building and running the conversation service.

use std::sync::Arc;

use helpdesk_kit::CancellationToken;
use helpdesk_kit::app::Workers;
use helpdesk_kit::auth::{AuthInterceptor, JwtKeys};
use helpdesk_kit::config::ServiceConfig;
use helpdesk_kit::outbox::Relay;
use helpdesk_proto::conversation::v1::conversation_service_server::ConversationServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;

pub use helpdesk_kit::app::StartupError;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::consumers;
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
        let helpdesk_kit::app::Connections {
            pool,
            bus,
            listener,
            port,
        } = helpdesk_kit::app::connect(&config, SCHEMA, &MIGRATOR).await?;
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
        let (pool, bus) = (api.pool.clone(), api.bus.clone());
        let mut workers = Workers::new();
        workers.relay(Relay::new(
            pool.clone(),
            bus.clone(),
            SCHEMA,
            config.outbox.clone(),
        ));
        workers.timers(pool.clone(), Arc::new(SnoozeWake), config.timers.clone());
        let consumer = consumers::consumer();
        workers.consumer(
            bus.clone(),
            pool.clone(),
            consumer.spec(),
            Arc::new(consumer),
            config.consumer.clone(),
        );
        let streams = api.shutdown.clone();
        let keys = api.keys.clone();
        let server = ConversationServiceServer::with_interceptor(api, AuthInterceptor::new(keys));
        let name = <ConversationServiceServer<Api> as NamedService>::NAME;
        helpdesk_kit::app::serve(
            listener,
            Routes::new(server),
            &[name],
            shutdown,
            streams,
            workers,
            bus,
            pool,
        )
        .await
    }
}
