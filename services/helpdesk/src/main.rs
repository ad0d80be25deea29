//! `helpdesk`: the all-in-one launcher and admin CLI.

mod catalog;
mod demo;
mod dlq;
mod health;
mod secret;
mod status;
mod tail;
mod transfers;
mod up;
mod web;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use helpdesk_kit::auth::{Claims, JwtKeys, Role};

#[derive(Parser)]
#[command(
    name = "helpdesk",
    version,
    about = "Helpdesk platform: launcher and admin CLI"
)]
struct Cli {
    /// Data folder of `helpdesk up` (private NATS/PostgreSQL data, generated JWT secret).
    #[arg(
        long,
        global = true,
        env = "HELPDESK_DATA_DIR",
        default_value = ".helpdesk"
    )]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs every service in one process. Without NATS_URL / DATABASE_URL it starts
    /// private nats-server and PostgreSQL under the data folder.
    Up(up::UpArgs),
    /// Mints a JWT (HELPDESK_JWT_SECRET, else the secret `up` generated).
    Token {
        /// Account (tenant) id.
        #[arg(long)]
        account: String,
        /// admin, supervisor, agent, visitor or integration.
        #[arg(long)]
        role: Role,
        /// User, contact or integration id.
        #[arg(long)]
        subject: String,
        /// Lifetime in hours.
        #[arg(long, default_value_t = 24)]
        ttl_hours: i64,
    },
    /// Event commands.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Plays a visitor and agents through a short chat against a running platform;
    /// routing hands the chat to an agent, who transfers it to a colleague.
    Demo(demo::DemoArgs),
    /// Transfer commands.
    Transfers {
        #[command(subcommand)]
        command: TransfersCommand,
    },
    /// Serves the web front ends (workbench and widget) alone, for deployments where
    /// each service runs in its own process.
    Web(WebArgs),
    /// What the platform is doing: health, outboxes, consumers, dead letters, queues.
    Status(status::StatusArgs),
    /// Dead-lettered and parked events: list, show, replay, discard.
    Dlq(dlq::DlqArgs),
    /// Checks a service's grpc.health.v1 status; exits non-zero unless SERVING.
    Health {
        /// Service address.
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// Service name to check (empty: the whole server).
        #[arg(long, default_value = "")]
        service: String,
    },
}

/// Options of `helpdesk web`.
#[derive(clap::Args)]
struct WebArgs {
    /// Address to listen on.
    #[arg(long, env = "HELPDESK_WEB_ADDR", default_value = "0.0.0.0:8080")]
    addr: std::net::SocketAddr,
    /// Folder of the built front ends.
    #[arg(long, env = "HELPDESK_WEB_DIR")]
    web_dir: Option<PathBuf>,
    /// A service's grpc-web base URL as browsers reach it, NAME=URL (repeatable; e.g.
    /// `routing=https://helpdesk.example.com:50052`). Unnamed services are looked for
    /// on the page's host at their default ports (50051 to 50055).
    #[arg(long = "service", value_parser = web::parse_service)]
    services: Vec<(String, web::Endpoint)>,
    /// Every service is at the page's own origin: a proxy or ingress in front routes
    /// each service's gRPC paths (`/helpdesk.<service>.v1.`) to it.
    #[arg(long, env = "HELPDESK_WEB_SAME_ORIGIN")]
    same_origin: bool,
}

#[derive(Subcommand)]
enum TransfersCommand {
    /// Prints transfer figures of a period as CSV (per receiving agent or per team).
    Stats(transfers::StatsArgs),
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Prints events, one JSON object a line (protobuf's JSON mapping).
    Tail(tail::TailArgs),
    /// Prints the event catalog (Markdown) generated from the protos.
    Catalog,
    /// Writes the protos' descriptor set (a FileDescriptorSet) to standard output, for
    /// decoding events in any language.
    Descriptors,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Up(args) => up::run(&cli.data_dir, args).await,
        Command::Token {
            account,
            role,
            subject,
            ttl_hours,
        } => {
            anyhow::ensure!(
                helpdesk_kit::bus::is_token(&account),
                "--account must be [A-Za-z0-9_-], at most 64"
            );
            anyhow::ensure!(!subject.is_empty(), "--subject is required");
            anyhow::ensure!(ttl_hours > 0, "--ttl-hours must be positive");
            let keys = JwtKeys::new(secret::load(&cli.data_dir)?.as_bytes());
            println!(
                "{}",
                keys.mint(&Claims::new(
                    &account,
                    &subject,
                    role,
                    chrono::Duration::hours(ttl_hours)
                ))
            );
            Ok(())
        }
        Command::Events {
            command: EventsCommand::Tail(args),
        } => tail::run(&cli.data_dir, args).await,
        Command::Events {
            command: EventsCommand::Catalog,
        } => {
            print!("{}", catalog::markdown());
            Ok(())
        }
        Command::Events {
            command: EventsCommand::Descriptors,
        } => {
            use std::io::Write;
            std::io::stdout().write_all(helpdesk_proto::FILE_DESCRIPTOR_SET)?;
            Ok(())
        }
        Command::Demo(args) => demo::run(&cli.data_dir, args).await,
        Command::Transfers {
            command: TransfersCommand::Stats(args),
        } => transfers::stats(&cli.data_dir, args).await,
        Command::Health { addr, service } => health::run(&addr, &service).await,
        Command::Web(args) => serve_web(args).await,
        Command::Status(args) => status::run(&cli.data_dir, args).await,
        Command::Dlq(args) => dlq::run(&cli.data_dir, args).await,
    }
}

async fn serve_web(args: WebArgs) -> anyhow::Result<()> {
    let dir = web::find_dir(args.web_dir.as_deref())
        .ok_or_else(|| anyhow::anyhow!("no built front ends found: pass --web-dir"))?;
    let mut endpoints: web::Endpoints = [
        ("conversation", 50051),
        ("routing", 50052),
        ("ticketing", 50053),
        ("automation", 50054),
        ("notification", 50055),
    ]
    .into_iter()
    .map(|(name, port)| {
        let endpoint = if args.same_origin {
            web::Endpoint::SameOrigin
        } else {
            web::Endpoint::Port(port)
        };
        (name.to_string(), endpoint)
    })
    .collect();
    endpoints.extend(args.services);
    let server = web::WebServer::bind(args.addr, &dir, endpoints).await?;
    println!("serving {} on http://{}/", dir.display(), server.addr);
    server.run(helpdesk_kit::shutdown::on_signal()).await
}
