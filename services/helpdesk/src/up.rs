//! `helpdesk up`: every service in one process, with private NATS and PostgreSQL
//! when none are configured.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use helpdesk_devservers::process::{self, Lifetime, ServerProcess};
use helpdesk_kit::Entry;
use helpdesk_kit::config::ServiceConfig;
use helpdesk_kit::{shutdown, telemetry};

/// Every service `helpdesk up` runs, in start order (each on the base port plus its
/// place).
pub fn services() -> [Entry; 5] {
    [
        Entry::of::<helpdesk_conversation::Conversation>(),
        Entry::of::<helpdesk_routing::Routing>(),
        Entry::of::<helpdesk_ticketing::Ticketing>(),
        Entry::of::<helpdesk_automation::Automation>(),
        Entry::of::<helpdesk_notification::Notification>(),
    ]
}

/// The default port of the first service; `--grpc-base-port` moves them all.
const FIRST_PORT: u16 = 50051;

/// Options of `helpdesk up`.
#[derive(clap::Args)]
pub struct UpArgs {
    /// Address the services' gRPC ports bind to.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// First gRPC port: conversation listens here; later services take the next ones.
    #[arg(long, default_value_t = 50051)]
    grpc_base_port: u16,
    /// Port of the private NATS server (when one is started).
    #[arg(long, default_value_t = 14222)]
    nats_port: u16,
    /// Port of the private PostgreSQL server (when one is started).
    #[arg(long, default_value_t = 15432)]
    postgres_port: u16,
    /// Port of the web front ends (the workbench at `/`, the widget under `/widget/`).
    #[arg(long, default_value_t = 8080)]
    web_port: u16,
    /// Port of the admin HTTP server: `/metrics` in Prometheus text.
    #[arg(long, default_value_t = 9464)]
    admin_port: u16,
    /// Folder of the built front ends (default: `web/dist`, built by deploy/local/up).
    #[arg(long, env = "HELPDESK_WEB_DIR")]
    web_dir: Option<PathBuf>,
}

/// The file in the data folder naming the private PostgreSQL server's URL while
/// `helpdesk up` runs it (`helpdesk status` reads it).
pub const DATABASE_URL_FILE: &str = "database-url";
/// The file naming the NATS server `helpdesk up` uses while it runs.
pub const NATS_URL_FILE: &str = "nats-url";

/// What a data-folder file of a running `helpdesk up` says, trimmed.
pub fn private_url(data_dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(data_dir.join(file))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The first of these environment variables that is set and not empty.
pub fn env_any(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// Runs until Ctrl-C / SIGTERM, then stops services, then private servers.
pub async fn run(data_dir: &Path, args: UpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let telemetry = telemetry::init("helpdesk");
    let open_files = helpdesk_kit::app::raise_open_files();
    let stop = shutdown::on_signal();
    let secret = crate::secret::load_or_create(data_dir)?;
    let mut private: Vec<ServerProcess> = Vec::new();
    let result = serve(data_dir, &args, secret, open_files, &mut private, stop).await;
    for server in private.iter_mut().rev() {
        server.stop().await;
    }
    let _ = std::fs::remove_file(data_dir.join(NATS_URL_FILE));
    let _ = std::fs::remove_file(data_dir.join(DATABASE_URL_FILE));
    println!("helpdesk stopped");
    telemetry.shutdown();
    result
}

async fn serve(
    data_dir: &Path,
    args: &UpArgs,
    secret: String,
    open_files: Option<u64>,
    private: &mut Vec<ServerProcess>,
    stop: helpdesk_kit::CancellationToken,
) -> anyhow::Result<()> {
    // Servers an earlier run of this data folder left behind (it was killed) are
    // stopped first, so their ports are free again.
    process::stop_leftovers(
        &data_dir.join("nats"),
        &process::postgres_data_dir(data_dir).await,
    )
    .await;
    let nats_url = match env_any(&["HELPDESK_NATS_URL", "NATS_URL"]) {
        Some(url) => url,
        None => {
            anyhow::ensure!(
                !process::port_open(args.nats_port).await,
                "port {} is taken: is another `helpdesk up` running? (choose --nats-port)",
                args.nats_port
            );
            let nats = process::start_nats(&data_dir.join("nats"), args.nats_port, Lifetime::Owned)
                .await?;
            let url = nats.url.clone();
            private.push(nats);
            url
        }
    };
    let database_url = match env_any(&["HELPDESK_DATABASE_URL", "DATABASE_URL"]) {
        Some(url) => url,
        None => {
            anyhow::ensure!(
                !process::port_open(args.postgres_port).await,
                "port {} is taken: is another `helpdesk up` running? (choose --postgres-port)",
                args.postgres_port
            );
            let pg_dir = process::postgres_data_dir(data_dir).await;
            let pg =
                process::start_postgres(&pg_dir, args.postgres_port, Lifetime::Owned, true).await?;
            let admin = sqlx::PgPool::connect(&pg.url).await?;
            let exists: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'helpdesk')",
            )
            .fetch_one(&admin)
            .await?;
            if !exists {
                sqlx::query("CREATE DATABASE helpdesk")
                    .execute(&admin)
                    .await?;
            }
            admin.close().await;
            let url = match pg.url.rsplit_once('/') {
                Some((server, _)) => format!("{server}/helpdesk"),
                None => anyhow::bail!("unexpected PostgreSQL URL {}", pg.url),
            };
            private.push(pg);
            // The private server trusts local connections: its URL holds no secret.
            std::fs::write(data_dir.join(DATABASE_URL_FILE), &url)?;
            url
        }
    };
    std::fs::write(data_dir.join(NATS_URL_FILE), &nats_url)?;
    let config_for = |port: u16| -> anyhow::Result<ServiceConfig> {
        let defaults = ServiceConfig {
            database_url: database_url.clone(),
            nats_url: nats_url.clone(),
            jwt_secret: secret.clone(),
            ..ServiceConfig::default()
        };
        let mut config = ServiceConfig::load_over(defaults)?;
        // One process, several services: each keeps its own default port.
        config.grpc_addr = SocketAddr::new(args.host, port);
        Ok(config)
    };

    // Each service at the base port plus its default port's distance from the first.
    let mut built = Vec::new();
    for entry in services() {
        let port = args
            .grpc_base_port
            .checked_add(entry.port - FIRST_PORT)
            .with_context(|| format!("--grpc-base-port leaves no port for {}", entry.name))?;
        let service = entry
            .build(config_for(port)?)
            .await
            .with_context(|| format!("starting the {} service", entry.name))?;
        built.push((entry.name, service));
    }
    let web = match crate::web::find_dir(args.web_dir.as_deref()) {
        Some(dir) => {
            let endpoints = built
                .iter()
                .map(|(name, s)| (name.to_string(), crate::web::Endpoint::Port(s.port)))
                .collect();
            let addr = SocketAddr::new(args.host, args.web_port);
            Some(crate::web::WebServer::bind(addr, &dir, endpoints).await?)
        }
        None => None,
    };
    let admin =
        helpdesk_kit::metrics::AdminServer::bind(SocketAddr::new(args.host, args.admin_port))
            .await
            .with_context(|| format!("binding the admin port {}", args.admin_port))?;
    println!("helpdesk is up");
    for (name, service) in &built {
        println!("  {name:<13} grpc://{}:{}", args.host, service.port);
    }
    match &web {
        Some(web) => {
            println!("  workbench     http://{}/", web.addr);
            println!(
                "  widget demo   http://{}/widget/demo.html?inbox=<public key>",
                web.addr
            );
        }
        None => println!(
            "  web           not served: the front ends are not built (deploy/local/up builds them)"
        ),
    }
    println!("  metrics       http://{}/metrics", admin.addr);
    println!("  NATS          {nats_url}   (events on helpdesk.evt.>)");
    println!("  PostgreSQL    {}", redact(&database_url));
    println!("  data          {}", data_dir.display());
    if let Some(limit) = open_files {
        println!("  open files    up to {limit} (each client connection holds one)");
    }
    println!();
    println!("Try, in another terminal:");
    println!("  helpdesk demo");
    println!("  helpdesk events tail");
    println!("  helpdesk token --account acme --role admin --subject me");
    println!("Ctrl-C stops everything.");

    // Ctrl-C / SIGTERM stops every service; so does any one service stopping.
    let services = stop.child_token();
    admin.spawn(services.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for (name, service) in built {
        let token = services.clone();
        tasks.spawn(async move {
            let result = service.run(token).await;
            (name, result.map_err(anyhow::Error::from))
        });
    }
    if let Some(web) = web {
        let token = services.clone();
        tasks.spawn(async move { ("web", web.run(token).await) });
    }
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let early = !services.is_cancelled();
        services.cancel();
        match joined {
            Ok((name, Err(e))) => {
                eprintln!("the {name} service failed: {e:#}");
                failures.push(format!("{name} service: {e:#}"));
            }
            Ok((name, Ok(()))) if early => {
                eprintln!("the {name} service stopped unexpectedly");
                failures.push(format!("{name} service stopped unexpectedly"));
            }
            Ok(_) => {}
            Err(e) => failures.push(format!("service task: {e}")),
        }
    }
    anyhow::ensure!(failures.is_empty(), "{}", failures.join("; "));
    Ok(())
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
