//! Events into deliveries: every enabled endpoint of the event's account that takes
//! its kind gets one delivery of it, once, however often the event is delivered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use helpdesk_kit::consumer::{HandlerError, IncomingEvent};
use helpdesk_proto::Event as _;
use helpdesk_proto::notification::v1::DeliveryFailed;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{body, patterns};
use crate::store::deliveries::{self, NewDelivery};
use crate::store::endpoints;

type Subscriptions = Arc<Vec<(Uuid, Vec<String>)>>;

/// What one consumer transaction has read and done so far: each account's enabled
/// endpoints (read once per transaction), and whether the senders were woken.
#[derive(Default)]
pub struct Memo(Mutex<MemoState>);

#[derive(Default)]
struct MemoState {
    batch: u64,
    endpoints: HashMap<String, Subscriptions>,
    woken: bool,
}

impl Memo {
    fn state(&self) -> std::sync::MutexGuard<'_, MemoState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The memo of transaction `batch` (a new one forgets the last).
    fn enter(&self, batch: u64) {
        let mut s = self.state();
        if s.batch != batch {
            *s = MemoState {
                batch,
                ..Default::default()
            };
        }
    }

    async fn endpoints(
        &self,
        conn: &mut PgConnection,
        account: &str,
    ) -> Result<Subscriptions, sqlx::Error> {
        if let Some(known) = self.state().endpoints.get(account) {
            return Ok(known.clone());
        }
        let read = Arc::new(endpoints::enabled(conn, account).await?);
        self.state()
            .endpoints
            .insert(account.to_string(), read.clone());
        Ok(read)
    }

    /// True the first time in the transaction: the senders are to be woken.
    fn wake(&self) -> bool {
        !std::mem::replace(&mut self.state().woken, true)
    }
}

/// Adds the deliveries of one event, as part of consumer transaction `batch`. An
/// event that cannot be read is poison.
pub async fn fan_out(
    conn: &mut PgConnection,
    event: &IncomingEvent,
    memo: &Memo,
    batch: u64,
) -> Result<(), HandlerError> {
    memo.enter(batch);
    let targets: Vec<Uuid> = memo
        .endpoints(conn, &event.account_id)
        .await?
        .iter()
        .filter(|(_, types)| patterns::matches(types, &event.kind))
        .map(|(id, _)| *id)
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
    if deliveries::insert_many(conn, &new).await? > 0 && memo.wake() {
        deliveries::wake(conn).await?;
    }
    Ok(())
}
