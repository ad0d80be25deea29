//! Building and running the routing service.

use std::sync::Arc;
use std::time::Duration;

use helpdesk_kit::CancellationToken;
use helpdesk_kit::app::Workers;
use helpdesk_kit::auth::{AuthInterceptor, JwtKeys};
use helpdesk_kit::config::ServiceConfig;
use helpdesk_kit::outbox::Relay;
use helpdesk_proto::routing::v1::routing_service_server::RoutingServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;

pub use helpdesk_kit::app::StartupError;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::engine;
use crate::grpc::Api;
use crate::store::state;
use crate::timers::RoutingTimers;
use helpdesk_kit::event::Origin;

/// Schema (and service) name.
pub const SCHEMA: &str = "routing";
/// Default gRPC port.
pub const DEFAULT_PORT: u16 = 50052;
/// How often every queue is re-examined (opening hours, missed triggers).
const SWEEP_INTERVAL: Duration = Duration::from_secs(2);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A routing service with its port bound, ready to run.
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

    /// Serves until `shutdown`; then health turns NOT_SERVING, calls and streams end,
    /// the consumer drains, pending events are published and workers stop.
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
        workers.timers(pool.clone(), Arc::new(RoutingTimers), config.timers.clone());
        let consumer = crate::consumers::consumer();
        workers.consumer(
            bus.clone(),
            pool.clone(),
            consumer.spec(),
            Arc::new(consumer),
            config.consumer.clone(),
        );
        let sweep_pool = pool.clone();
        workers.task(move |stop| sweep(sweep_pool, stop));
        let streams = api.shutdown.clone();
        let keys = JwtKeys::new(config.jwt_secret.as_bytes());
        let server = RoutingServiceServer::with_interceptor(api, AuthInterceptor::new(keys));
        let name = <RoutingServiceServer<Api> as NamedService>::NAME;
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

/// Re-examines every non-empty queue periodically: chats waiting for opening time,
/// and anything a missed trigger left behind.
async fn sweep(pool: PgPool, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
        }
        let accounts = match pool.acquire().await {
            Ok(mut conn) => state::accounts_with_queue(&mut conn)
                .await
                .unwrap_or_default(),
            Err(_) => continue,
        };
        for account in accounts {
            let result = async {
                let mut tx = pool.begin().await?;
                engine::dispatch(&mut tx, &Origin::system(&account), None).await?;
                tx.commit().await?;
                Ok::<_, helpdesk_kit::error::Error>(())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, %account, "queue sweep failed");
            }
        }
    }
}
