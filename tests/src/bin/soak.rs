//! `soak`: every service in two processes of its own against private NATS and
//! PostgreSQL servers (fsync off), under mixed load (chats, messages, transfers,
//! tickets and their emails, a rule, webhooks) for `--minutes`, through a SIGKILL of a
//! routing process, a NATS restart and a PostgreSQL restart (unless `--no-faults`).
//! Prints what was sent, stored, delivered, duplicated and lost, and latency
//! percentiles; exits 1 on any loss or duplicate.
//!
//! The service binaries are taken from this program's own build folder:
//! `deploy/local/soak` builds them all in release mode first.

use std::time::Duration;

use clap::Parser;
use helpdesk_tests::soak::{self, SoakSpec};

#[derive(Parser)]
#[command(about = "Helpdesk soak: mixed load on two processes of every service, through faults")]
struct Args {
    /// How long the load runs.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Chats started per second.
    #[arg(long, default_value_t = 2.0)]
    chats_per_second: f64,
    /// Messages each visitor sends.
    #[arg(long, default_value_t = 5)]
    messages_per_chat: usize,
    /// Agents online (four chats each at most).
    #[arg(long, default_value_t = 8)]
    agents: usize,
    /// No process kill, NATS restart or PostgreSQL restart.
    #[arg(long)]
    no_faults: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let spec = SoakSpec {
        duration: Duration::from_secs_f64(args.minutes * 60.0),
        chats_per_second: args.chats_per_second,
        messages_per_chat: args.messages_per_chat,
        agents: args.agents,
        faults: !args.no_faults,
    };
    let report = soak::run(&spec).await?;
    println!("{report}");
    let problems = report.problems();
    if problems.is_empty() {
        println!("clean: nothing lost, nothing repeated");
        Ok(())
    } else {
        anyhow::bail!("the soak found: {}", problems.join("; "))
    }
}
