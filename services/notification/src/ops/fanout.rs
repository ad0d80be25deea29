//! Events into deliveries: every enabled endpoint of the event's account that takes
//! its kind gets one delivery of it, once, however often the event is delivered.

use helpdesk_kit::consumer::{HandlerError, IncomingEvent};
use helpdesk_proto::Event as _;
use helpdesk_proto::notification::v1::DeliveryFailed;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{body, patterns};
use crate::store::deliveries::{self, NewDelivery};
use crate::store::endpoints;

/// Adds the deliveries of one event. An event that cannot be read is poison.
pub async fn fan_out(conn: &mut PgConnection, event: &IncomingEvent) -> Result<(), HandlerError> {
    let targets: Vec<Uuid> = endpoints::enabled(conn, &event.account_id)
        .await?
        .into_iter()
        .filter(|(_, types)| patterns::matches(types, &event.kind))
        .map(|(id, _)| id)
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let data = body::event_json(&event.event_type, &event.payload).map_err(HandlerError::Poison)?;
    // A delivery's failure is not sent to the endpoint that failed.
    let about = (event.kind == DeliveryFailed::KIND)
        .then(|| data["delivery"]["endpointId"].as_str().map(str::to_string))
        .flatten();
    let at = body::occurred_at(&data).unwrap_or_else(chrono::Utc::now);
    let body = body::body(&event.kind, at, data);
    let new: Vec<NewDelivery> = targets
        .into_iter()
        .filter(|id| about.as_deref() != Some(id.to_string().as_str()))
        .map(|endpoint_id| NewDelivery {
            id: Uuid::now_v7(),
            account_id: event.account_id.clone(),
            endpoint_id,
            event_id: event.event_id.clone(),
            event_type: event.kind.clone(),
            body: body.clone(),
        })
        .collect();
    deliveries::insert_many(conn, &new).await?;
    Ok(())
}
