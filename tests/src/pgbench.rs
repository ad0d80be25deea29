//! PostgreSQL's own ceiling for the message path: `pgbench` running the transaction
//! SendMessage makes (`bench/message.sql`, tables from `bench/message_setup.sql` in a
//! `bench` schema that is dropped afterwards).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;

/// Conversations `bench/message_setup.sql` creates.
const SETUP_CONVERSATIONS: usize = 1000;

/// One pgbench run.
#[derive(Debug, Clone)]
pub struct PgbenchSpec {
    /// Database to run in (its `bench` schema is replaced, then dropped).
    pub database_url: String,
    /// Concurrent clients (`-c`).
    pub clients: usize,
    /// Conversations the transactions spread over (`-D conversations=`).
    pub conversations: usize,
    /// How long to run (`-T`, whole seconds, at least one).
    pub duration: Duration,
}

impl PgbenchSpec {
    /// `-T`: the duration rounded up to whole seconds.
    pub fn seconds(&self) -> u64 {
        self.duration.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// A file of `tests/bench`.
pub fn bench_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bench")
        .join(name)
}

/// `$HELPDESK_PG_BIN_DIR/pgbench` (exported by `. deploy/local/tools`), else `pgbench`
/// on the PATH.
pub fn pgbench_bin() -> PathBuf {
    std::env::var_os("HELPDESK_PG_BIN_DIR")
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d).join("pgbench"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("pgbench"))
}

/// What pgbench measured.
#[derive(Debug, Clone, Copy)]
pub struct PgbenchReport {
    /// Transactions per second.
    pub tps: f64,
    /// How long it waited for the database to go quiet first (quiet period included).
    pub waited: Duration,
    /// False when the database was still busy when the wait gave up.
    pub quiet: bool,
}

/// How long the database must show no other active query before pgbench starts.
pub const QUIET_FOR: Duration = Duration::from_secs(2);
/// The longest wait for that.
const QUIET_WAIT: Duration = Duration::from_secs(60);

/// Waits (at most [`QUIET_WAIT`]) until no other session of the database has run a
/// query for [`QUIET_FOR`], so work left over from the load (consumers catching up)
/// does not count against pgbench. Returns how long it waited and whether it got there.
async fn wait_quiet(pool: &sqlx::PgPool) -> anyhow::Result<(Duration, bool)> {
    let started = tokio::time::Instant::now();
    let mut quiet_since = started;
    while started.elapsed() < QUIET_WAIT {
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND backend_type = 'client backend' AND state <> 'idle'",
        )
        .fetch_one(pool)
        .await?;
        let now = tokio::time::Instant::now();
        if busy > 0 {
            quiet_since = now;
        } else if now - quiet_since >= QUIET_FOR {
            return Ok((now - started, true));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((started.elapsed(), false))
}

/// Waits for the database to go quiet, creates the `bench` schema, runs pgbench, drops
/// the schema.
pub async fn run(spec: &PgbenchSpec) -> anyhow::Result<PgbenchReport> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&spec.database_url)
        .await
        .context("connecting to the pgbench database")?;
    let result = async {
        let (waited, quiet) = wait_quiet(&pool).await?;
        let setup = std::fs::read_to_string(bench_file("message_setup.sql"))
            .context("reading bench/message_setup.sql")?;
        sqlx::raw_sql(&setup)
            .execute(&pool)
            .await
            .context("creating the bench schema")?;
        if spec.conversations > SETUP_CONVERSATIONS {
            sqlx::query(
                "INSERT INTO bench.conversations (id, account_id) \
                 SELECT g, 'load' FROM generate_series($1::bigint, $2::bigint) g",
            )
            .bind(SETUP_CONVERSATIONS as i64 + 1)
            .bind(spec.conversations as i64)
            .execute(&pool)
            .await?;
        }
        let tps = pgbench(spec).await?;
        Ok::<_, anyhow::Error>(PgbenchReport { tps, waited, quiet })
    }
    .await;
    let dropped = sqlx::query("DROP SCHEMA IF EXISTS bench CASCADE")
        .execute(&pool)
        .await;
    pool.close().await;
    let report = result?;
    dropped.context("dropping the bench schema")?;
    Ok(report)
}

async fn pgbench(spec: &PgbenchSpec) -> anyhow::Result<f64> {
    let bin = pgbench_bin();
    let clients = spec.clients.max(1);
    let out = tokio::process::Command::new(&bin)
        .args(["-n", "-c", &clients.to_string()])
        .args(["-j", &clients.min(2).to_string()])
        .args(["-T", &spec.seconds().to_string()])
        .args([
            "-D",
            &format!("conversations={}", spec.conversations.max(1)),
        ])
        .arg("-f")
        .arg(bench_file("message.sql"))
        .arg(&spec.database_url)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| {
            format!(
                "running {} (set HELPDESK_PG_BIN_DIR: . deploy/local/tools)",
                bin.display()
            )
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "pgbench failed ({}): {}{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_tps(&stdout).with_context(|| format!("no `tps = ` in pgbench's output:\n{stdout}"))
}

/// The last `tps = <n>` line of pgbench's report (older versions print one including
/// and one excluding connection time, in that order).
pub fn parse_tps(output: &str) -> Option<f64> {
    output.lines().rev().find_map(|l| {
        l.trim()
            .strip_prefix("tps = ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tps_from_pgbench_output() {
        let new = "latency average = 9.6 ms\ntps = 5183.925217 (without initial connection time)\n";
        assert_eq!(parse_tps(new), Some(5183.925217));
        let old = "tps = 100.5 (including connections establishing)\ntps = 101.25 (excluding connections establishing)\n";
        assert_eq!(parse_tps(old), Some(101.25));
        assert_eq!(parse_tps("nothing"), None);
    }
}
