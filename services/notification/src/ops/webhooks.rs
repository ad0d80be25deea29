//! Deliveries made on request: a test event, a command's payload, a redelivery.

use helpdesk_kit::error::{Error, Result};
use helpdesk_proto::notification::v1::Delivery;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::body;
use crate::store::deliveries::{self, NewDelivery};
use crate::store::endpoints::{self, EndpointRow};

/// The enabled endpoint `id` of the account.
async fn enabled_endpoint(conn: &mut PgConnection, account: &str, id: Uuid) -> Result<EndpointRow> {
    let endpoint = endpoints::get(conn, account, id, false)
        .await?
        .ok_or(Error::NotFound("endpoint"))?;
    if !endpoint.enabled {
        return Err(Error::FailedPrecondition(
            "the endpoint is disabled; enable it first".into(),
        ));
    }
    Ok(endpoint)
}

/// Queues a `webhook.test` event for the endpoint.
pub async fn send_test(conn: &mut PgConnection, account: &str, endpoint: Uuid) -> Result<Delivery> {
    let e = enabled_endpoint(conn, account, endpoint).await?;
    let id = Uuid::now_v7();
    let data = json!({
        "endpointId": e.id.to_string(),
        "message": "A test event from your helpdesk: this endpoint receives its webhooks.",
    });
    let new = NewDelivery {
        id,
        account_id: account.to_string(),
        endpoint_id: e.id,
        event_id: id.to_string(),
        event_type: "webhook.test".into(),
        body: body::body("webhook.test", chrono::Utc::now(), data),
    };
    deliveries::insert_one(conn, &new).await?;
    delivery(conn, account, id).await
}

/// Queues a caller's payload for the endpoint, once per idempotency key.
pub async fn send(
    conn: &mut PgConnection,
    account: &str,
    endpoint: Uuid,
    key: &str,
    event_type: &str,
    data: Value,
) -> Result<Uuid> {
    let e = enabled_endpoint(conn, account, endpoint).await?;
    let new = NewDelivery {
        id: Uuid::now_v7(),
        account_id: account.to_string(),
        endpoint_id: e.id,
        event_id: key.to_string(),
        event_type: event_type.to_string(),
        body: body::body(event_type, chrono::Utc::now(), data),
    };
    Ok(deliveries::insert_one(conn, &new).await?)
}

/// One delivery of the account.
pub async fn delivery(conn: &mut PgConnection, account: &str, id: Uuid) -> Result<Delivery> {
    Ok(deliveries::get(conn, account, id)
        .await?
        .ok_or(Error::NotFound("delivery"))?
        .to_proto())
}

/// Sends a delivery again from the start of the schedule (its endpoint must be
/// enabled).
pub async fn redeliver(conn: &mut PgConnection, account: &str, id: Uuid) -> Result<Delivery> {
    let current = deliveries::get(conn, account, id)
        .await?
        .ok_or(Error::NotFound("delivery"))?;
    enabled_endpoint(conn, account, current.endpoint_id).await?;
    Ok(deliveries::restart(conn, account, id)
        .await?
        .ok_or(Error::NotFound("delivery"))?
        .to_proto())
}
