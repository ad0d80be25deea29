//! `loadgen`: visitors send messages while agents are subscribed; prints messages/s,
//! SendMessage latency and the latency to the agents' Subscribe streams.
//!
//! Closed loop by default (each visitor sends `--messages` one after another). With
//! `--rate`, open loop: messages scheduled at that rate in total for `--duration`
//! (or `--messages-total`), latencies counted from the scheduled send time. With
//! `--pgbench`, pgbench then runs SendMessage's transaction on `--database-url` with
//! as many clients and as long, and both rates are compared.
//!
//! Without `--conversation` it starts a conversation service in-process on NATS and
//! PostgreSQL servers of its own (fsync off), which stop when it ends.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use helpdesk_tests::load::{self, LoadReport, LoadSpec, OpenLoop};
use helpdesk_tests::pgbench::{self, PgbenchSpec};

#[derive(Parser)]
#[command(about = "Helpdesk load generator")]
struct Args {
    /// Concurrent visitors (one conversation each).
    #[arg(long, default_value_t = 50)]
    visitors: usize,
    /// Agents subscribed to the account.
    #[arg(long, default_value_t = 5)]
    agents: usize,
    /// Closed loop: messages each visitor sends, one after another.
    #[arg(long, default_value_t = 40, conflicts_with = "rate")]
    messages: usize,
    /// Open loop: messages per second in total, round robin over the visitors'
    /// conversations, sent whatever the responses do.
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: seconds to send for [default: 10].
    #[arg(long, requires = "rate", conflicts_with = "messages_total")]
    duration: Option<f64>,
    /// Open loop: messages to send in all, instead of --duration.
    #[arg(long, requires = "rate")]
    messages_total: Option<usize>,
    /// Address of a running conversation service (then HELPDESK_JWT_SECRET is required).
    #[arg(long)]
    conversation: Option<String>,
    /// Account to load [default: a fresh load-<random>].
    #[arg(long)]
    account: Option<String>,
    /// Afterwards, run pgbench with SendMessage's transaction (tests/bench/message.sql),
    /// --visitors clients for as long as the load ran, and compare the rates.
    #[arg(long)]
    pgbench: bool,
    /// Database for --pgbench (required with --conversation; in-process, the test
    /// database).
    #[arg(long, requires = "pgbench")]
    database_url: Option<String>,
}

/// `scheme://user:***@host…`: the URL without its password.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // In-process: servers of this run only, stopped however it ends.
    let owned = match args.conversation {
        Some(_) => None,
        None => Some(load::own_servers().await?),
    };
    let result = run(&args).await;
    if let Some(servers) = owned {
        servers.stop().await;
    }
    result
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let open_loop = args.rate.map(|rate| OpenLoop {
        rate,
        total: args
            .messages_total
            .unwrap_or_else(|| (rate * args.duration.unwrap_or(10.0)).round() as usize),
    });
    let place = load::place(args.conversation.as_deref());
    let (addr, secret, database_url, local) = match &args.conversation {
        Some(addr) => {
            anyhow::ensure!(
                !args.pgbench || args.database_url.is_some(),
                "--pgbench against a running platform needs --database-url"
            );
            (
                addr.clone(),
                load::jwt_secret_from_env()?,
                args.database_url.clone(),
                None,
            )
        }
        None => {
            let env = helpdesk_kit::testing::TestEnv::new().await;
            let app = helpdesk_kit::testing::spawn::<helpdesk_conversation::Conversation>(
                env.service_config(),
            )
            .await;
            let addr = app.url();
            eprintln!("started an in-process conversation service at {addr}");
            let database_url = args.database_url.clone().unwrap_or(env.database_url);
            (addr, env.jwt_secret, Some(database_url), Some(app))
        }
    };
    let spec = LoadSpec {
        conversation_addr: addr,
        jwt_secret: secret,
        account: args
            .account
            .clone()
            .unwrap_or_else(|| load::fresh_account("load")),
        visitors: args.visitors,
        agents: args.agents,
        messages_per_visitor: args.messages,
        drain_timeout: Duration::from_secs(60),
        open_loop,
    };
    println!(
        "measuring: {}, account {}, on {place}",
        describe(&spec),
        spec.account
    );
    let report = load::run(&spec).await;
    if let Some(app) = local {
        app.stop().await;
    }
    let report = report?;
    println!("{}", report.render(&spec, &place));

    if args.pgbench {
        let database_url = database_url.context("--pgbench needs --database-url")?;
        compare_with_pgbench(&spec, &report, &database_url, &place).await?;
    }
    anyhow::ensure!(
        report.failed == 0 && report.lost() == 0,
        "{} SendMessage calls failed; {} of {} deliveries never arrived",
        report.failed,
        report.lost(),
        report.expected_deliveries
    );
    Ok(())
}

/// What a load run measures, in one line.
fn describe(spec: &LoadSpec) -> String {
    let what = format!(
        "SendMessage and its delivery to {} subscribed agents",
        spec.agents
    );
    match spec.open_loop {
        None => format!(
            "{what}, closed loop ({} visitors each sending {} messages one after another)",
            spec.visitors, spec.messages_per_visitor
        ),
        Some(open) => format!(
            "{what}, open loop ({} messages/s scheduled for {:.1}s, {} messages round robin over {} conversations; latencies from the scheduled send time)",
            open.rate,
            open.duration().as_secs_f64(),
            open.total,
            spec.visitors
        ),
    }
}

/// Runs pgbench with as many clients (one per visitor) and as long as the load, and
/// prints both rates.
async fn compare_with_pgbench(
    spec: &LoadSpec,
    report: &LoadReport,
    database_url: &str,
    place: &str,
) -> anyhow::Result<()> {
    let pg = PgbenchSpec {
        database_url: database_url.to_string(),
        clients: spec.visitors,
        conversations: spec.visitors,
        duration: spec
            .open_loop
            .map(|o| o.duration())
            .unwrap_or(report.send_duration),
    };
    println!(
        "measuring: pgbench with SendMessage's transaction (tests/bench/message.sql), {} clients over {} conversations for {} s, on {} (the load ran on {place})",
        pg.clients,
        pg.conversations,
        pg.seconds(),
        redact(database_url)
    );
    let pgbench::PgbenchReport { tps, waited, quiet } = pgbench::run(&pg).await?;
    let bound = spec
        .open_loop
        .map(|o| format!(" (open loop: at most the scheduled {}/s)", o.rate))
        .unwrap_or_default();
    println!(
        "pgbench started after waiting {:.1}s for the database to be quiet for {} s{}",
        waited.as_secs_f64(),
        pgbench::QUIET_FOR.as_secs(),
        if quiet {
            ""
        } else {
            " (it never was: other work ran alongside)"
        }
    );
    println!(
        "pgbench: {tps:.0} transactions/s; platform: {:.0} messages/s{bound}; platform / pgbench = {:.2}",
        report.messages_per_sec(),
        report.messages_per_sec() / tps.max(1e-9)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:25432/helpdesk"),
            "postgres://postgres@127.0.0.1:25432/helpdesk"
        );
    }
}
