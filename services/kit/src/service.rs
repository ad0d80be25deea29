//! What a service is: a name, a port, its own settings, its migrations and its
//! parts (gRPC services, event consumers, timers, background tasks). The kit does the
//! rest: configuration, telemetry, connections, workers stopped in order, serving,
//! graceful shutdown.
//!
//! ```ignore
//! impl kit::Service for Ticketing {
//!     const NAME: &'static str = "ticketing";
//!     const PORT: u16 = 50053;
//!     type Settings = TicketingSettings;
//!     fn migrator() -> &'static Migrator { &MIGRATOR }
//!     fn parts(ctx: &Ctx, settings: &TicketingSettings) -> Parts { … }
//! }
//! fn main() -> anyhow::Result<()> { Ok(helpdesk_kit::main::<Ticketing>()?) }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::app::{StartupError, Workers};
use crate::auth::{AuthInterceptor, JwtKeys};
use crate::bus::Bus;
use crate::config::{ConfigError, ServiceConfig};
use crate::consumer::{Consumer, ConsumerSpec, Handler};
use crate::timers::TimerHandler;

/// One service of the platform.
pub trait Service: 'static {
    /// Its name: schema, durable consumer, `ce-source` and settings section.
    const NAME: &'static str;
    /// Its default gRPC port.
    const PORT: u16;
    /// Its own settings, the `[<NAME>]` section of the configuration.
    type Settings: Settings;
    /// Its schema's migrations.
    fn migrator() -> &'static Migrator;
    /// Its gRPC services, consumers, timers and tasks, built on its connections.
    fn parts(ctx: &Ctx, settings: &Self::Settings) -> Parts;
}

/// A service's own settings: defaults, then the `[<name>]` TOML section, then
/// `HELPDESK_<NAME>__<KEY>` variables.
pub trait Settings: Serialize + DeserializeOwned + Default + Clone + Send + Sync + 'static {
    /// Checks values that deserialize but make no sense; keys are named relative to
    /// the section (the kit prefixes the section's name).
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Settings of a service that has none of its own.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

impl Settings for NoSettings {}

/// What a service's parts are built from.
#[derive(Clone)]
pub struct Ctx {
    /// Pool bound to the service's schema.
    pub pool: PgPool,
    /// Bus connection.
    pub bus: Bus,
    /// Keys that verify (and mint) tokens.
    pub keys: JwtKeys,
    /// The shared settings.
    pub config: Arc<ServiceConfig>,
    /// Cancelled when the service stops: live streams end with it.
    pub streams: CancellationToken,
    /// Live fan-out of the account feeds to the service's streams.
    pub live: crate::live::Hub,
}

impl Ctx {
    /// The interceptor that verifies bearer tokens.
    pub fn auth(&self) -> AuthInterceptor {
        AuthInterceptor::new(self.keys.clone())
    }
}

type Starter = Box<dyn FnOnce(&mut Workers, &Ctx) + Send>;

/// A service's parts: what it serves and what runs in the background.
#[derive(Default)]
pub struct Parts {
    pub(crate) routes: Option<Routes>,
    pub(crate) names: Vec<&'static str>,
    pub(crate) starters: Vec<Starter>,
    /// The durable names of its consumers (sampled for the metrics).
    pub(crate) consumers: Vec<String>,
}

impl Parts {
    /// Nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves a gRPC service (reported SERVING by health while up).
    pub fn grpc<S, B>(mut self, svc: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<B>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.routes = Some(match self.routes.take() {
            Some(routes) => routes.add_service(svc),
            None => Routes::new(svc),
        });
        self.names.push(S::NAME);
        self
    }

    /// Runs an event consumer (restarted when it fails, stopped first on shutdown).
    pub fn consumer<H: Send + Sync + 'static>(mut self, consumer: Consumer<H>) -> Self {
        self.consumers.push(consumer.spec().name);
        self.starters.push(Box::new(move |workers, ctx| {
            workers.consumer(
                ctx.bus.clone(),
                ctx.pool.clone(),
                consumer.spec(),
                Arc::new(consumer),
                ctx.config.consumer.clone(),
            )
        }));
        self
    }

    /// Runs a consumer named `name` of every event kind of the platform
    /// ([`helpdesk_proto::catalog`]) with one untyped [`Handler`]: for a service that
    /// treats all events alike (forwarding them outside).
    pub fn all_events<H: Handler>(self, name: &str, handler: H) -> Self {
        let kinds: Vec<&str> = helpdesk_proto::catalog().iter().map(|e| e.kind).collect();
        self.events(name, &kinds, handler)
    }

    /// Runs a consumer named `name` of the event kinds `kinds` with one untyped
    /// [`Handler`] (which reads [`IncomingEvent::kind`](crate::consumer::IncomingEvent)).
    pub fn events<H: Handler>(mut self, name: &str, kinds: &[&str], handler: H) -> Self {
        let spec = ConsumerSpec {
            name: name.to_string(),
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
        };
        self.consumers.push(spec.name.clone());
        self.starters.push(Box::new(move |workers, ctx| {
            workers.consumer(
                ctx.bus.clone(),
                ctx.pool.clone(),
                spec,
                Arc::new(handler),
                ctx.config.consumer.clone(),
            )
        }));
        self
    }

    /// Fires the service's durable timers.
    pub fn timers<H: TimerHandler>(mut self, handler: H) -> Self {
        self.starters.push(Box::new(move |workers, ctx| {
            workers.timers(
                ctx.pool.clone(),
                Arc::new(handler),
                ctx.config.timers.clone(),
            )
        }));
        self
    }

    /// Answers command `C` (request/reply on `<root>.cmd.<service>.<command>`) with
    /// `handler`, replicas sharing the requests.
    pub fn command<C, H>(mut self, handler: H) -> Self
    where
        C: helpdesk_proto::Command,
        H: crate::command::Answer<C>,
    {
        let handler = Arc::new(handler);
        self.starters.push(Box::new(move |workers, ctx| {
            let bus = ctx.bus.clone();
            workers.task(move |stop| crate::command::serve::<C, H>(bus, handler, stop))
        }));
        self
    }

    /// Runs a background task until the token it is given is cancelled.
    pub fn task<F, Fut>(mut self, make: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.starters
            .push(Box::new(move |workers, _| workers.task(make)));
        self
    }
}

/// A service with its connections open and its port bound, ready to run.
pub struct Application<S: Service> {
    listener: tokio::net::TcpListener,
    port: u16,
    ctx: Ctx,
    settings: S::Settings,
}

impl<S: Service> Application<S> {
    /// Connects to PostgreSQL (migrating the schema) and NATS, and binds the port.
    pub async fn build(config: ServiceConfig, settings: S::Settings) -> Result<Self, StartupError> {
        let crate::app::Connections {
            pool,
            bus,
            listener,
            port,
        } = crate::app::connect(&config, S::NAME, S::migrator()).await?;
        let streams = CancellationToken::new();
        let live = crate::live::Hub::new(
            bus.client.clone(),
            bus.subjects.clone(),
            config.live.clone(),
            streams.clone(),
        );
        let ctx = Ctx {
            pool,
            bus,
            keys: JwtKeys::new(config.jwt_secret.as_bytes()),
            config: Arc::new(config),
            streams,
            live,
        };
        Ok(Self {
            listener,
            port,
            ctx,
            settings,
        })
    }

    /// The bound gRPC port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The service's database pool (its own schema).
    pub fn pool(&self) -> &PgPool {
        &self.ctx.pool
    }

    /// Serves until `shutdown`; then health turns NOT_SERVING, in-flight calls and
    /// live streams end, consumers finish the event in hand, timers and tasks stop,
    /// the relay publishes what is pending, NATS is flushed and the pool closed.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), StartupError> {
        let Self {
            listener,
            ctx,
            settings,
            ..
        } = self;
        let parts = S::parts(&ctx, &settings);
        let mut workers = Workers::new();
        workers.relay(crate::outbox::Relay::new(
            ctx.pool.clone(),
            ctx.bus.clone(),
            S::NAME,
            ctx.config.outbox.clone(),
        ));
        for start in parts.starters {
            start(&mut workers, &ctx);
        }
        let (pool, bus, consumers) = (ctx.pool.clone(), ctx.bus.clone(), parts.consumers);
        workers.task(move |stop| crate::sampling::run(S::NAME, pool, bus, consumers, stop));
        let routes = parts.routes.unwrap_or_default();
        // Each connection may open its live streams and, beside them, ordinary calls.
        let streams_per_connection =
            u32::try_from(ctx.config.live.max_streams_per_connection + 100).unwrap_or(u32::MAX);
        crate::app::serve(
            listener,
            routes,
            &parts.names,
            streams_per_connection,
            shutdown,
            ctx.streams.clone(),
            workers,
            ctx.bus.clone(),
            ctx.pool.clone(),
        )
        .await
    }
}

/// Loads `S`'s configuration: the shared settings (with `S::PORT` as the default
/// port) and its own section.
pub fn load<S: Service>() -> Result<(ServiceConfig, S::Settings), ConfigError> {
    let config = ServiceConfig::load(S::PORT)?;
    let settings = crate::config::load_section::<S::Settings>(S::NAME)?;
    Ok((config, settings))
}

/// The whole `main` of a service binary: configuration, telemetry, signals, serving.
pub fn main<S: Service>() -> Result<(), StartupError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(StartupError::Runtime)?;
    runtime.block_on(async {
        let (config, settings) = load::<S>()?;
        let telemetry = crate::telemetry::init(S::NAME);
        let open_files = crate::app::raise_open_files();
        tracing::info!(service = S::NAME, ?open_files, "open-file limit");
        let stop = crate::shutdown::on_signal();
        if let Some(addr) = config.admin_addr {
            let admin = crate::metrics::AdminServer::bind(addr)
                .await
                .map_err(|source| StartupError::Bind { addr, source })?;
            tracing::info!(service = S::NAME, addr = %admin.addr, "metrics at /metrics");
            admin.spawn(stop.clone());
        }
        let app = Application::<S>::build(config, settings).await?;
        tracing::info!(service = S::NAME, port = app.port(), "listening");
        let result = app.run(stop).await;
        tracing::info!(service = S::NAME, "stopped");
        telemetry.shutdown();
        result
    })
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A service as the all-in-one launcher sees it: a name, a default port and a way to
/// build it, whatever its type.
#[derive(Clone, Copy)]
pub struct Entry {
    /// The service's name.
    pub name: &'static str,
    /// Its default port.
    pub port: u16,
    build: fn(ServiceConfig) -> BoxFuture<Result<Built, StartupError>>,
}

/// A service built by an [`Entry`]: its port and how to run it.
pub struct Built {
    /// The bound gRPC port.
    pub port: u16,
    run: Box<dyn FnOnce(CancellationToken) -> BoxFuture<Result<(), StartupError>> + Send>,
}

impl Built {
    /// Serves until `shutdown` (see [`Application::run`]).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), StartupError> {
        (self.run)(shutdown).await
    }
}

impl Entry {
    /// The entry of `S`.
    pub fn of<S: Service>() -> Self {
        Self {
            name: S::NAME,
            port: S::PORT,
            build: |config| {
                Box::pin(async move {
                    let settings = crate::config::load_section::<S::Settings>(S::NAME)?;
                    let app = Application::<S>::build(config, settings).await?;
                    Ok(Built {
                        port: app.port(),
                        run: Box::new(move |stop| Box::pin(app.run(stop))),
                    })
                })
            },
        }
    }

    /// Loads the service's own section and builds it on `config`.
    pub async fn build(&self, config: ServiceConfig) -> Result<Built, StartupError> {
        (self.build)(config).await
    }
}
