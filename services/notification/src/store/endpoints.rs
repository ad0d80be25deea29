//! Webhook endpoints.

use chrono::{DateTime, Utc};
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::notification::v1::Endpoint;
use sqlx::PgConnection;
use uuid::Uuid;

/// An endpoint as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub account_id: String,
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub enabled: bool,
    pub rate_limit_per_second: Option<i32>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub disabled_reason: String,
    pub failing_since: Option<DateTime<Utc>>,
    pub throttled_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EndpointRow {
    /// The contract's view, without the secret.
    pub fn to_proto(&self) -> Endpoint {
        Endpoint {
            id: self.id.to_string(),
            url: self.url.clone(),
            event_types: self.event_types.clone(),
            description: self.description.clone(),
            enabled: self.enabled,
            rate_limit_per_second: self
                .rate_limit_per_second
                .and_then(|r| u32::try_from(r).ok())
                .unwrap_or(0),
            disabled_reason: self.disabled_reason.clone(),
            create_time: Some(to_timestamp(self.created_at)),
            update_time: Some(to_timestamp(self.updated_at)),
            secret: String::new(),
        }
    }
}

const COLUMNS: &str = "account_id, id, url, event_types, description, enabled, rate_limit_per_second, \
     secret, previous_secret, previous_secret_until, disabled_reason, failing_since, throttled_until, \
     created_at, updated_at";

/// Stores a new endpoint.
pub async fn insert(conn: &mut PgConnection, e: &EndpointRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO endpoints (account_id, id, url, event_types, description, enabled,
             rate_limit_per_second, secret, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(&e.account_id)
    .bind(e.id)
    .bind(&e.url)
    .bind(&e.event_types)
    .bind(&e.description)
    .bind(e.enabled)
    .bind(e.rate_limit_per_second)
    .bind(&e.secret)
    .bind(e.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// One endpoint of the account, locked when `lock`.
pub async fn get(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
    lock: bool,
) -> Result<Option<EndpointRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM endpoints WHERE account_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query_as(&sql)
        .bind(account)
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The account's endpoints oldest first, after `(created_at, id)`.
pub async fn list(
    conn: &mut PgConnection,
    account: &str,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<EndpointRow>, sqlx::Error> {
    let (at, id) = after.unzip();
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM endpoints WHERE account_id = $1
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
         ORDER BY created_at, id LIMIT $4"
    ))
    .bind(account)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// How many endpoints the account has.
pub async fn count(conn: &mut PgConnection, account: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM endpoints WHERE account_id = $1")
        .bind(account)
        .fetch_one(conn)
        .await
}

/// Writes an endpoint's changeable fields back.
pub async fn update(conn: &mut PgConnection, e: &EndpointRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE endpoints SET url = $3, event_types = $4, description = $5, enabled = $6,
             rate_limit_per_second = $7, secret = $8, previous_secret = $9,
             previous_secret_until = $10, disabled_reason = $11, failing_since = $12,
             throttled_until = $13, updated_at = now()
         WHERE account_id = $1 AND id = $2",
    )
    .bind(&e.account_id)
    .bind(e.id)
    .bind(&e.url)
    .bind(&e.event_types)
    .bind(&e.description)
    .bind(e.enabled)
    .bind(e.rate_limit_per_second)
    .bind(&e.secret)
    .bind(&e.previous_secret)
    .bind(e.previous_secret_until)
    .bind(&e.disabled_reason)
    .bind(e.failing_since)
    .bind(e.throttled_until)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes an endpoint (its deliveries go with it); whether it existed.
pub async fn delete(conn: &mut PgConnection, account: &str, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM endpoints WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(id)
            .execute(conn)
            .await?
            .rows_affected()
            == 1,
    )
}

/// The account's enabled endpoints and the event types each takes.
pub async fn enabled(
    conn: &mut PgConnection,
    account: &str,
) -> Result<Vec<(Uuid, Vec<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT id, event_types FROM endpoints WHERE account_id = $1 AND enabled")
        .bind(account)
        .fetch_all(conn)
        .await
}

/// After a failed attempt: the endpoint fails since now unless it already did, and a
/// `Retry-After` pauses it. Returns whether it is enabled and since when it fails.
pub async fn record_failure(
    conn: &mut PgConnection,
    id: Uuid,
    pause_until: Option<DateTime<Utc>>,
) -> Result<Option<(bool, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE endpoints SET failing_since = COALESCE(failing_since, now()),
             throttled_until = CASE WHEN $2::timestamptz IS NULL THEN throttled_until
                                    ELSE GREATEST(COALESCE(throttled_until, $2), $2) END
         WHERE id = $1 RETURNING enabled, failing_since",
    )
    .bind(id)
    .bind(pause_until)
    .fetch_optional(conn)
    .await
}

/// Locks endpoints in id order (a writer's first lock).
pub async fn lock(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1 FROM endpoints WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// After successful attempts: those endpoints no longer fail.
pub async fn record_successes(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE endpoints SET failing_since = NULL
         WHERE id = ANY($1) AND failing_since IS NOT NULL",
    )
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// Disables an endpoint the platform gave up on; the endpoint when it was enabled
/// until now (so its event is emitted once).
pub async fn disable(
    conn: &mut PgConnection,
    id: Uuid,
    reason: &str,
) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE endpoints SET enabled = false, disabled_reason = $2, updated_at = now()
         WHERE id = $1 AND enabled RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(reason)
    .fetch_optional(conn)
    .await
}
