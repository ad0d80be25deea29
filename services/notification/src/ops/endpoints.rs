//! Endpoints: register, change, remove, rotate the secret, read their health.

use chrono::{DateTime, Utc};
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::time::{opt_timestamp, to_timestamp};
use helpdesk_proto::notification::v1::{Endpoint, EndpointHealth, EndpointSecret};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{MAX_ENDPOINTS, signature};
use crate::store::deliveries;
use crate::store::endpoints::{self, EndpointRow};

/// What a create or an update sets (already validated).
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub enabled: bool,
    pub rate_limit_per_second: Option<i32>,
    pub secret: Option<String>,
}

/// Registers an endpoint; the answer carries its secret.
pub async fn create(
    conn: &mut PgConnection,
    account: &str,
    input: EndpointInput,
) -> Result<Endpoint> {
    if endpoints::count(conn, account).await? >= MAX_ENDPOINTS {
        return Err(Error::FailedPrecondition(format!(
            "an account has at most {MAX_ENDPOINTS} webhook endpoints"
        )));
    }
    let now = Utc::now();
    let row = EndpointRow {
        account_id: account.to_string(),
        id: Uuid::now_v7(),
        url: input.url,
        event_types: input.event_types,
        description: input.description,
        enabled: input.enabled,
        rate_limit_per_second: input.rate_limit_per_second,
        secret: input.secret.unwrap_or_else(signature::new_secret),
        previous_secret: None,
        previous_secret_until: None,
        disabled_reason: String::new(),
        failing_since: None,
        throttled_until: None,
        created_at: now,
        updated_at: now,
    };
    endpoints::insert(conn, &row).await?;
    Ok(Endpoint {
        secret: row.secret.clone(),
        ..row.to_proto()
    })
}

/// The endpoint `id` of the account.
pub async fn get(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
    lock: bool,
) -> Result<EndpointRow> {
    endpoints::get(conn, account, id, lock)
        .await?
        .ok_or(Error::NotFound("endpoint"))
}

/// Applies the fields named in `mask`. Enabling an endpoint clears its failure
/// record, so it starts afresh.
pub async fn update(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
    input: EndpointInput,
    mask: &[String],
) -> Result<Endpoint> {
    let mut row = get(conn, account, id, true).await?;
    for field in mask {
        match field.as_str() {
            "url" => row.url = input.url.clone(),
            "event_types" => row.event_types = input.event_types.clone(),
            "description" => row.description = input.description.clone(),
            "rate_limit_per_second" => row.rate_limit_per_second = input.rate_limit_per_second,
            "enabled" => {
                if input.enabled && !row.enabled {
                    row.disabled_reason.clear();
                    row.failing_since = None;
                    row.throttled_until = None;
                }
                if !input.enabled {
                    row.disabled_reason.clear();
                }
                row.enabled = input.enabled;
            }
            _ => {}
        }
    }
    endpoints::update(conn, &row).await?;
    if row.enabled {
        // Deliveries that waited while it was disabled go now.
        deliveries::wake(conn).await?;
    }
    Ok(get(conn, account, id, false).await?.to_proto())
}

/// Removes an endpoint and its deliveries.
pub async fn delete(conn: &mut PgConnection, account: &str, id: Uuid) -> Result<()> {
    if endpoints::delete(conn, account, id).await? {
        Ok(())
    } else {
        Err(Error::NotFound("endpoint"))
    }
}

/// The endpoint's current secret.
pub async fn secret(conn: &mut PgConnection, account: &str, id: Uuid) -> Result<EndpointSecret> {
    let row = get(conn, account, id, false).await?;
    Ok(secret_of(&row))
}

fn secret_of(row: &EndpointRow) -> EndpointSecret {
    EndpointSecret {
        endpoint_id: row.id.to_string(),
        secret: row.secret.clone(),
        previous_valid_until: row
            .previous_secret_until
            .filter(|until| *until > Utc::now())
            .map(to_timestamp),
    }
}

/// A new secret; the current one keeps signing until `grace` has passed.
pub async fn rotate(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
    grace: chrono::Duration,
) -> Result<EndpointSecret> {
    let mut row = get(conn, account, id, true).await?;
    row.previous_secret = Some(std::mem::replace(&mut row.secret, signature::new_secret()));
    row.previous_secret_until = Some(Utc::now() + grace);
    endpoints::update(conn, &row).await?;
    Ok(secret_of(&row))
}

/// How the endpoint has answered since `since`.
pub async fn health(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
    since: DateTime<Utc>,
) -> Result<EndpointHealth> {
    let row = get(conn, account, id, false).await?;
    let h = deliveries::health(conn, id, since).await?;
    Ok(EndpointHealth {
        endpoint_id: id.to_string(),
        window_seconds: (Utc::now() - since).num_seconds(),
        attempts: h.attempts,
        successes: h.successes,
        success_rate: if h.attempts == 0 {
            1.0
        } else {
            h.successes as f64 / h.attempts as f64
        },
        pending: h.pending,
        failed: h.failed,
        last_success_time: opt_timestamp(h.last_success),
        last_failure_time: opt_timestamp(h.last_failure),
        failing_since: opt_timestamp(row.failing_since),
        enabled: row.enabled,
        disabled_reason: row.disabled_reason,
    })
}
