//! PostgreSQL pool bound to one service's schema, plus the kit's own tables
//! (outbox, inbox, timers) in that schema.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

/// Database setup failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Bad URL or schema name.
    #[error("invalid database setting: {0}")]
    Invalid(String),
    /// Connection or query failure.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Connects to `url` with every connection's `search_path` set to `schema`, creating
/// the schema if needed, then creates the kit tables and runs `migrator`.
pub async fn connect_and_migrate(
    url: &str,
    schema: &str,
    max_connections: u32,
    migrator: &Migrator,
) -> Result<PgPool, DbError> {
    if !schema.chars().all(|c| c.is_ascii_lowercase() || c == '_') || schema.is_empty() {
        return Err(DbError::Invalid(format!("schema name {schema:?}")));
    }
    let base: PgConnectOptions = url
        .parse()
        .map_err(|e| DbError::Invalid(format!("database_url: {e}")))?;
    let base = base.log_statements(tracing::log::LevelFilter::Trace);
    {
        let mut conn = base.connect().await?;
        // Two services starting at once may race on CREATE SCHEMA; the advisory lock
        // serialises them.
        sqlx::query("SELECT pg_advisory_lock(hashtextextended('helpdesk.create_schema', 0))")
            .execute(&mut conn)
            .await?;
        // Only when missing: a role given just its own schema (deploy/k8s/README.md)
        // may not create schemas, and PostgreSQL checks that before IF NOT EXISTS.
        let created = async {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                    .bind(schema)
                    .fetch_one(&mut conn)
                    .await?;
            if !exists {
                sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                    .execute(&mut conn)
                    .await?;
            }
            Ok::<_, sqlx::Error>(())
        }
        .await;
        sqlx::query("SELECT pg_advisory_unlock(hashtextextended('helpdesk.create_schema', 0))")
            .execute(&mut conn)
            .await?;
        created?;
    }
    let options = base.options([("search_path", schema)]);
    // Migrations at start may wait on other services' (several start at once).
    let startup = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(STARTUP_ACQUIRE_TIMEOUT)
        .connect_with(options.clone())
        .await?;
    install_kit_tables(&startup).await?;
    migrator.run(&startup).await?;
    startup.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        // Short: while the database is unreachable a call answers UNAVAILABLE within
        // it, rather than hanging until the client gives up.
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Longest wait for a connection while migrating at start.
const STARTUP_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait for a pooled connection.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Creates the outbox, inbox and timers tables of the current schema (idempotent).
pub async fn install_kit_tables(pool: &PgPool) -> Result<(), DbError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '.kit_tables', 0))",
    )
    .execute(&mut *tx)
    .await?;
    for statement in KIT_TABLES {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

const KIT_TABLES: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS outbox (
        id            BIGSERIAL PRIMARY KEY,
        event_id      UUID NOT NULL UNIQUE,
        subject       TEXT NOT NULL,
        event_type    TEXT NOT NULL,
        ce_subject    TEXT NOT NULL DEFAULT '',
        payload       BYTEA NOT NULL,
        traceparent   TEXT,
        tracestate    TEXT,
        occurred_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
        published_at  TIMESTAMPTZ
    )",
    "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE published_at IS NULL",
    // Published rows are deleted by the relay; nothing needs this index any more.
    "DROP INDEX IF EXISTS outbox_published",
    // Events NATS refused for good, moved aside so the ones after them flow.
    "CREATE TABLE IF NOT EXISTS outbox_parked (
        id            BIGINT PRIMARY KEY,
        event_id      UUID NOT NULL,
        subject       TEXT NOT NULL,
        event_type    TEXT NOT NULL,
        ce_subject    TEXT NOT NULL,
        payload       BYTEA NOT NULL,
        traceparent   TEXT,
        tracestate    TEXT,
        occurred_at   TIMESTAMPTZ NOT NULL,
        parked_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
        reason        TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS inbox (
        consumer      TEXT NOT NULL,
        event_id      TEXT NOT NULL,
        subject       TEXT NOT NULL,
        processed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, event_id)
    )",
    "CREATE INDEX IF NOT EXISTS inbox_processed ON inbox (consumer, processed_at)",
    "CREATE TABLE IF NOT EXISTS timers (
        id            BIGSERIAL PRIMARY KEY,
        kind          TEXT NOT NULL,
        key           TEXT NOT NULL,
        due_at        TIMESTAMPTZ NOT NULL,
        fingerprint   TEXT NOT NULL,
        payload       JSONB NOT NULL DEFAULT '{}',
        attempts      INT NOT NULL DEFAULT 0,
        last_error    TEXT,
        created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
        UNIQUE (kind, key)
    )",
    "CREATE INDEX IF NOT EXISTS timers_due ON timers (due_at)",
    // A worker's claim on a due timer: no other worker takes it until then.
    "ALTER TABLE timers ADD COLUMN IF NOT EXISTS claimed_until TIMESTAMPTZ",
    // The answers of idempotent commands, by the caller's key (`command::once`).
    "CREATE TABLE IF NOT EXISTS command_results (
        command       TEXT NOT NULL,
        account_id    TEXT NOT NULL,
        key           TEXT NOT NULL,
        response      BYTEA NOT NULL,
        created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (command, account_id, key)
    )",
    "CREATE INDEX IF NOT EXISTS command_results_created ON command_results (created_at)",
    // Timers that failed `timers::MAX_ATTEMPTS` times, with their last error.
    "CREATE TABLE IF NOT EXISTS timers_failed (
        id            BIGINT PRIMARY KEY,
        kind          TEXT NOT NULL,
        key           TEXT NOT NULL,
        due_at        TIMESTAMPTZ NOT NULL,
        fingerprint   TEXT NOT NULL,
        payload       JSONB NOT NULL,
        attempts      INT NOT NULL,
        last_error    TEXT,
        failed_at     TIMESTAMPTZ NOT NULL DEFAULT now()
    )",
];

/// Wakes the workers waiting on `channel` (in every replica) when the transaction
/// on `conn` commits.
pub async fn wake(conn: &mut sqlx::PgConnection, channel: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(channel)
        .execute(conn)
        .await?;
    Ok(())
}

/// Waits for [`wake`]s on one channel, listening again by itself after the database
/// was lost.
pub struct Wakeups {
    pool: PgPool,
    channel: &'static str,
    listener: Option<sqlx::postgres::PgListener>,
}

impl Wakeups {
    /// Wake-ups on `channel` (listening starts with the first wait).
    pub fn new(pool: PgPool, channel: &'static str) -> Self {
        Self {
            pool,
            channel,
            listener: None,
        }
    }

    /// Listens now, if not yet (so that a wake-up sent before the next wait counts).
    pub async fn listen(&mut self) {
        if self.listener.is_none() {
            let mut listener = match sqlx::postgres::PgListener::connect_with(&self.pool).await {
                Ok(l) => l,
                Err(_) => return,
            };
            if listener.listen(self.channel).await.is_ok() {
                self.listener = Some(listener);
            }
        }
    }

    /// Returns at the next wake-up (the ones that arrived meanwhile count as one), or
    /// after a short pause while the database cannot be reached.
    pub async fn wait(&mut self) {
        self.listen().await;
        let Some(listener) = self.listener.as_mut() else {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            return;
        };
        match listener.recv().await {
            Ok(_) => while listener.next_buffered().is_some() {},
            Err(_) => {
                self.listener = None;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}
