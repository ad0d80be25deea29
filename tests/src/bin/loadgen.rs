//! `loadgen`: N visitors send messages while M agents are subscribed; prints messages/s
//! and SendMessage → agent-stream latency.
//!
//! Without `--conversation` it starts a conversation service in-process on private
//! NATS and PostgreSQL (the same ones the tests use).

use std::time::Duration;

use clap::Parser;
use helpdesk_tests::load::{self, LoadSpec};

#[derive(Parser)]
#[command(about = "Helpdesk load generator")]
struct Args {
    /// Concurrent visitors (one conversation each).
    #[arg(long, default_value_t = 50)]
    visitors: usize,
    /// Agents subscribed to the account.
    #[arg(long, default_value_t = 5)]
    agents: usize,
    /// Messages each visitor sends, one after another.
    #[arg(long, default_value_t = 40)]
    messages: usize,
    /// Address of a running conversation service (then HELPDESK_JWT_SECRET is required).
    #[arg(long)]
    conversation: Option<String>,
    /// Account to load.
    #[arg(long, default_value = "load")]
    account: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (addr, secret, local) = match args.conversation {
        Some(addr) => {
            let secret = std::env::var("HELPDESK_JWT_SECRET").map_err(|_| {
                anyhow::anyhow!("HELPDESK_JWT_SECRET is required with --conversation")
            })?;
            (addr, secret, None)
        }
        None => {
            let env = helpdesk_kit::testing::TestEnv::new().await;
            let app = helpdesk_kit::testing::spawn::<helpdesk_conversation::Conversation>(
                env.service_config(),
            )
            .await;
            let addr = app.url();
            eprintln!("started an in-process conversation service at {addr}");
            (addr, env.jwt_secret.clone(), Some(app))
        }
    };
    let spec = LoadSpec {
        conversation_addr: addr,
        jwt_secret: secret,
        account: args.account,
        visitors: args.visitors,
        agents: args.agents,
        messages_per_visitor: args.messages,
        drain_timeout: Duration::from_secs(60),
    };
    let report = load::run(&spec).await.map_err(|e| anyhow::anyhow!(e))?;
    println!("{}", report.render(&spec));
    if let Some(app) = local {
        app.stop().await;
    }
    anyhow::ensure!(
        report.delivery_latency_us.len() == report.expected_deliveries,
        "only {} of {} deliveries arrived",
        report.delivery_latency_us.len(),
        report.expected_deliveries
    );
    Ok(())
}
