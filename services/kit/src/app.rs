//! The machinery under [`crate::service::Application`]: its startup error,
//! connections, ordered workers and serving.

use crate::bus::BusError;
use crate::db::DbError;

/// A service failed to start, or its server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Database setup.
    #[error(transparent)]
    Db(#[from] DbError),
    /// NATS setup.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Binding the gRPC port.
    #[error("binding {addr}: {source}")]
    Bind {
        /// Address.
        addr: std::net::SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// A setting is missing or invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The async runtime could not start.
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Binds `addr` and returns the listener with its actual port (`:0` picks one).
pub async fn bind(
    addr: std::net::SocketAddr,
) -> Result<(tokio::net::TcpListener, u16), StartupError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })?;
    let port = listener
        .local_addr()
        .map_err(|source| StartupError::Bind { addr, source })?
        .port();
    Ok((listener, port))
}

/// A service's background work, stopped in order on shutdown: event consumers first
/// (their effects produce events), then timers and other tasks, then the outbox relay,
/// which publishes what is pending one last time.
pub struct Workers {
    consumers: tokio::task::JoinSet<()>,
    tasks: tokio::task::JoinSet<()>,
    relay: Option<tokio::task::JoinHandle<()>>,
    consumer_stop: tokio_util::sync::CancellationToken,
    task_stop: tokio_util::sync::CancellationToken,
    relay_stop: tokio_util::sync::CancellationToken,
}

impl Default for Workers {
    fn default() -> Self {
        Self::new()
    }
}

impl Workers {
    /// No workers yet.
    pub fn new() -> Self {
        Self {
            consumers: tokio::task::JoinSet::new(),
            tasks: tokio::task::JoinSet::new(),
            relay: None,
            consumer_stop: tokio_util::sync::CancellationToken::new(),
            task_stop: tokio_util::sync::CancellationToken::new(),
            relay_stop: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Runs the outbox relay.
    pub fn relay(&mut self, relay: crate::outbox::Relay) {
        self.relay = Some(tokio::spawn(relay.run(self.relay_stop.clone())));
    }

    /// Runs a durable timer worker.
    pub fn timers<H: crate::timers::TimerHandler>(
        &mut self,
        pool: sqlx::PgPool,
        handler: std::sync::Arc<H>,
        config: crate::config::TimerConfig,
    ) {
        self.tasks.spawn(crate::timers::run_worker(
            pool,
            handler,
            config,
            self.task_stop.clone(),
        ));
    }

    /// Runs an event consumer, restarting it a second after it fails (NATS down at
    /// start, stream not there yet) until shutdown.
    pub fn consumer<H: crate::consumer::Handler>(
        &mut self,
        bus: crate::bus::Bus,
        pool: sqlx::PgPool,
        spec: crate::consumer::ConsumerSpec,
        handler: std::sync::Arc<H>,
        config: crate::config::ConsumerConfig,
    ) {
        let stop = self.consumer_stop.clone();
        self.consumers.spawn(async move {
            loop {
                let result = crate::consumer::run(
                    bus.clone(),
                    pool.clone(),
                    spec.clone(),
                    handler.clone(),
                    config.clone(),
                    stop.clone(),
                )
                .await;
                if stop.is_cancelled() {
                    return;
                }
                match result {
                    Ok(()) => tracing::warn!(consumer = %spec.name, "event consumer stopped; restarting"),
                    Err(e) => tracing::warn!(consumer = %spec.name, error = %e, "event consumer failed; restarting"),
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        });
    }

    /// Runs another background task until it sees its token cancelled.
    pub fn task<F, Fut>(&mut self, make: F)
    where
        F: FnOnce(tokio_util::sync::CancellationToken) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(make(self.task_stop.clone()));
    }

    /// Stops everything in order and waits for it.
    pub async fn stop(mut self) {
        self.consumer_stop.cancel();
        while self.consumers.join_next().await.is_some() {}
        self.task_stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.relay_stop.cancel();
        if let Some(relay) = self.relay.take() {
            let _ = relay.await;
        }
    }
}

/// Serves `routes` until `shutdown`; live streams watching `streams` end with it.
/// Then health is NOT_SERVING and in-flight calls finish, the workers stop in order,
/// NATS is flushed and the pool closed.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: tokio::net::TcpListener,
    routes: tonic::service::Routes,
    service_names: &[&str],
    streams_per_connection: u32,
    shutdown: tokio_util::sync::CancellationToken,
    streams: tokio_util::sync::CancellationToken,
    workers: Workers,
    bus: crate::bus::Bus,
    pool: sqlx::PgPool,
) -> Result<(), StartupError> {
    let stop_streams = shutdown.clone();
    tokio::spawn(async move {
        stop_streams.cancelled().await;
        streams.cancel();
    });
    let dependencies = crate::grpc::Dependencies {
        pool: pool.clone(),
        nats: bus.client.clone(),
    };
    let served = crate::grpc::serve(
        listener,
        routes,
        service_names,
        streams_per_connection,
        shutdown,
        Some(dependencies),
    )
    .await;
    workers.stop().await;
    let _ = bus.client.flush().await;
    pool.close().await;
    served.map_err(StartupError::from)
}

/// What every service opens at start: its schema-bound pool (migrated), its NATS
/// connection (streams ensured) and its bound gRPC listener.
pub struct Connections {
    /// Pool bound to the service's schema.
    pub pool: sqlx::PgPool,
    /// Bus connection.
    pub bus: crate::bus::Bus,
    /// Bound gRPC listener.
    pub listener: tokio::net::TcpListener,
    /// Its actual port.
    pub port: u16,
}

/// Connects to PostgreSQL (creating and migrating `schema`) and NATS, and binds the port.
pub async fn connect(
    config: &crate::config::ServiceConfig,
    schema: &str,
    migrator: &sqlx::migrate::Migrator,
) -> Result<Connections, StartupError> {
    let pool = crate::db::connect_and_migrate(
        &config.database_url,
        schema,
        config.database_max_connections,
        migrator,
    )
    .await?;
    let bus = crate::bus::Bus::connect(config, &format!("helpdesk-{schema}")).await?;
    let (listener, port) = bind(config.grpc_addr).await?;
    Ok(Connections {
        pool,
        bus,
        listener,
        port,
    })
}

/// Raises this process's soft limit of open files to its hard limit (every open
/// client connection and live stream's connection holds one; 1,024, a common default,
/// caps the widgets a node serves). Returns the limit now in force, if it is known.
pub fn raise_open_files() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            None
        }
    }
}
