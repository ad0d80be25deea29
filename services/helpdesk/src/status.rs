//! `helpdesk status`: what the platform is doing, for operators: each service's health,
//! its outbox (events waiting to be published, the oldest one's age, parked events),
//! the durable consumers' pending and redelivered counts, the dead letters, and the
//! queues per account and team.

use std::time::Duration;

use anyhow::Context;
use futures::TryStreamExt;
use serde::Serialize;
use sqlx::Row;

/// Options of `helpdesk status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// Print JSON (for scripts) instead of a table.
    #[arg(long)]
    json: bool,
    /// Host of the services' gRPC ports.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// First gRPC port (conversation); the other services take the next ones.
    #[arg(long, default_value_t = 50051)]
    grpc_base_port: u16,
    /// PostgreSQL URL (default: HELPDESK_DATABASE_URL, DATABASE_URL, else the private
    /// server of a running `helpdesk up` with the same data folder).
    #[arg(long)]
    database_url: Option<String>,
    /// NATS URL (default: HELPDESK_NATS_URL, NATS_URL, the one `helpdesk up` runs, else nats://127.0.0.1:4222).
    #[arg(long)]
    nats_url: Option<String>,
    /// The events' JetStream stream (its dead letters are in `<stream>_DLQ`).
    #[arg(long, env = "HELPDESK_STREAM_NAME", default_value = "HELPDESK_EVENTS")]
    stream: String,
}

/// The platform's state.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    services: Vec<ServiceHealth>,
    outbox: Vec<Outbox>,
    consumers: Vec<Consumer>,
    dead_letters: Vec<DeadLetters>,
    queues: Vec<Queue>,
    /// What could not be read (the rest is still shown).
    problems: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceHealth {
    name: String,
    address: String,
    /// SERVING, NOT_SERVING or UNREACHABLE.
    health: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Outbox {
    service: String,
    backlog: i64,
    oldest_seconds: f64,
    parked: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Consumer {
    name: String,
    pending: u64,
    ack_pending: usize,
    redelivered: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeadLetters {
    consumer: String,
    count: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Queue {
    account: String,
    team_id: String,
    team: String,
    waiting: i64,
    longest_wait_seconds: f64,
}

/// Reads and prints the platform's state; fails (exit 1) unless every service is
/// serving and everything could be read, so that scripts can act on it.
pub async fn run(data_dir: &std::path::Path, args: StatusArgs) -> anyhow::Result<()> {
    let mut status = Status::default();
    for (i, entry) in crate::up::services().iter().enumerate() {
        let address = format!("{}:{}", args.host, args.grpc_base_port + i as u16);
        let health = match tokio::time::timeout(
            Duration::from_secs(2),
            crate::health::check(&format!("http://{address}"), ""),
        )
        .await
        {
            Ok(Ok(s)) => s.as_str_name().to_string(),
            _ => "UNREACHABLE".to_string(),
        };
        status.services.push(ServiceHealth {
            name: entry.name.to_string(),
            address,
            health,
        });
    }
    match database(data_dir, args.database_url.clone()).await {
        Ok(pool) => {
            if let Err(e) = read_database(&pool, &mut status).await {
                status.problems.push(format!("PostgreSQL: {e:#}"));
            }
        }
        Err(e) => status.problems.push(format!("PostgreSQL: {e:#}")),
    }
    if let Err(e) = read_nats(data_dir, &args, &mut status).await {
        status.problems.push(format!("NATS: {e:#}"));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_table(&status);
    }
    let serving = status.services.iter().all(|s| s.health == "SERVING");
    anyhow::ensure!(
        serving && status.problems.is_empty(),
        "not every service is serving, or not everything could be read"
    );
    Ok(())
}

/// A small pool on `given`, else HELPDESK_DATABASE_URL, DATABASE_URL, else the private
/// server of a running `helpdesk up` with this data folder.
pub async fn database(
    data_dir: &std::path::Path,
    given: Option<String>,
) -> anyhow::Result<sqlx::PgPool> {
    let url = given
        .or_else(|| crate::up::env_any(&["HELPDESK_DATABASE_URL", "DATABASE_URL"]))
        .or_else(|| crate::up::private_url(data_dir, crate::up::DATABASE_URL_FILE))
        .context("no database URL: pass --database-url (or run it beside `helpdesk up`)")?;
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&url)
        .await
        .context("connecting")
}

async fn read_database(pool: &sqlx::PgPool, status: &mut Status) -> anyhow::Result<()> {
    for entry in crate::up::services() {
        let schema = entry.name;
        let row = sqlx::query(&format!(
            "SELECT (SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL),
                    (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(occurred_at)), 0)::float8
                       FROM {schema}.outbox WHERE published_at IS NULL),
                    (SELECT count(*) FROM {schema}.outbox_parked)"
        ))
        .fetch_one(pool)
        .await
        .with_context(|| format!("the {schema} outbox"))?;
        status.outbox.push(Outbox {
            service: schema.to_string(),
            backlog: row.try_get(0)?,
            oldest_seconds: row.try_get(1)?,
            parked: row.try_get(2)?,
        });
    }
    let rows = sqlx::query(
        "SELECT q.account_id, COALESCE(q.team_id::text, ''), COALESCE(t.name, ''), count(*),
                EXTRACT(EPOCH FROM now() - min(q.enqueued_at))::float8
           FROM routing.queue q
           LEFT JOIN routing.teams t ON t.account_id = q.account_id AND t.id = q.team_id
          GROUP BY 1, 2, 3 ORDER BY 1, 3",
    )
    .fetch_all(pool)
    .await
    .context("the routing queue")?;
    for row in rows {
        status.queues.push(Queue {
            account: row.try_get(0)?,
            team_id: row.try_get(1)?,
            team: row.try_get(2)?,
            waiting: row.try_get(3)?,
            longest_wait_seconds: row.try_get(4)?,
        });
    }
    Ok(())
}

async fn read_nats(
    data_dir: &std::path::Path,
    args: &StatusArgs,
    status: &mut Status,
) -> anyhow::Result<()> {
    let js = crate::tail::jetstream(data_dir, args.nats_url.clone()).await?;
    let stream = js
        .get_stream(&args.stream)
        .await
        .with_context(|| format!("the stream {}", args.stream))?;
    let consumers: Vec<_> = stream.consumers().try_collect().await?;
    // The services' durable consumers (not a reader's ephemeral one, like a tail's).
    for c in consumers
        .into_iter()
        .filter(|c| c.config.durable_name.is_some())
    {
        status.consumers.push(Consumer {
            name: c.name,
            pending: c.num_pending,
            ack_pending: c.num_ack_pending,
            redelivered: c.num_redelivered,
        });
    }
    status.consumers.sort_by(|a, b| a.name.cmp(&b.name));
    let dlq = js
        .get_stream(format!("{}_DLQ", args.stream))
        .await
        .with_context(|| format!("the stream {}_DLQ", args.stream))?;
    let counts: Vec<(String, usize)> = dlq.info_with_subjects(">").await?.try_collect().await?;
    for (subject, count) in counts {
        // `<root>.dlq.<consumer>`.
        let consumer = subject.rsplit('.').next().unwrap_or_default().to_string();
        status.dead_letters.push(DeadLetters { consumer, count });
    }
    status
        .dead_letters
        .sort_by(|a, b| a.consumer.cmp(&b.consumer));
    Ok(())
}

fn print_table(s: &Status) {
    println!("services");
    for h in &s.services {
        println!("  {:<13} {:<21} {}", h.name, h.address, h.health);
    }
    println!("outbox (events waiting to be published)");
    for o in &s.outbox {
        println!(
            "  {:<13} backlog {:<7} oldest {:>7.1} s   parked {}",
            o.service, o.backlog, o.oldest_seconds, o.parked
        );
    }
    println!("consumers");
    for c in &s.consumers {
        println!(
            "  {:<13} pending {:<7} waiting for ack {:<5} redelivered {}",
            c.name, c.pending, c.ack_pending, c.redelivered
        );
    }
    println!("dead letters");
    if s.dead_letters.is_empty() {
        println!("  none");
    }
    for d in &s.dead_letters {
        println!("  {:<13} {}", d.consumer, d.count);
    }
    println!("queues");
    if s.queues.is_empty() {
        println!("  nothing waiting");
    }
    for q in &s.queues {
        let team = if q.team.is_empty() {
            "(no team)"
        } else {
            &q.team
        };
        println!(
            "  {:<16} {:<20} {} waiting, longest {:.0} s",
            q.account, team, q.waiting, q.longest_wait_seconds
        );
    }
    for p in &s.problems {
        println!("could not read {p}");
    }
}
