//! SQL of the notification schema. Every query names the account, except the
//! sender's, which works across accounts on rows it has claimed.

pub mod agents;
pub mod alerts;
pub mod contacts;
pub mod deliveries;
pub mod emails;
pub mod endpoints;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Deletes up to `limit` rows of `table` (deliveries or emails) created before
/// `before` whose status is not `waiting`; how many. Their ids are UUIDv7, ordered by
/// creation time, so the primary key finds them.
pub(crate) async fn delete_older(
    pool: &PgPool,
    table: &str,
    waiting: &str,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let millis = u64::try_from(before.timestamp_millis()).unwrap_or(0);
    let bound = uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid();
    Ok(sqlx::query(&format!(
        "DELETE FROM {table} WHERE status <> $2 AND id IN (
             SELECT id FROM {table} WHERE id < $1 AND status <> $2 ORDER BY id LIMIT $3)"
    ))
    .bind(bound)
    .bind(waiting)
    .bind(limit)
    .execute(pool)
    .await?
    .rows_affected())
}
