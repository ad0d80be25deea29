//! `WatchTickets`: the account's ticket events, live, as the tickets they leave.

use std::pin::Pin;

use futures::Stream;
use helpdesk_kit::auth::Caller;
use helpdesk_kit::error::Result;
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::live::Scope;
use helpdesk_proto::ticketing::v1::*;
use prost::Message as _;
use tonic::Status;

use super::Api;

/// The stream `WatchTickets` answers with.
pub type NoticeStream = Pin<Box<dyn Stream<Item = Result<TicketChangeNotice, Status>> + Send>>;

/// A ticket event as a notice; `None` for the account's other events.
fn notice(kind: &str, key: &str, payload: &[u8]) -> Option<TicketChangeNotice> {
    // Every `ticket.*` event carries the ticket in field 2 (`TicketCommentAdded` adds
    // the comment in field 3); the SLA events name it by id.
    let (ticket, comment) = match kind {
        "ticket.created"
        | "ticket.updated"
        | "ticket.status_changed"
        | "ticket.assigned"
        | "ticket.merged" => (TicketCreated::decode(payload).ok()?.ticket, None),
        "ticket.comment_added" => {
            let e = TicketCommentAdded::decode(payload).ok()?;
            (e.ticket, e.comment)
        }
        "sla.warning" | "sla.breached" => (None, None),
        _ => return None,
    };
    Some(TicketChangeNotice {
        event: kind.to_string(),
        ticket_id: ticket
            .as_ref()
            .map_or_else(|| key.to_string(), |t| t.id.clone()),
        ticket,
        comment,
    })
}

impl Api {
    pub(crate) async fn watch_tickets_impl(
        &self,
        c: Caller,
        req: WatchTicketsRequest,
    ) -> Result<NoticeStream> {
        c.claims.require_staff()?;
        let scope = if req.ticket_id.is_empty() {
            Scope::Account
        } else {
            let mut v = Violations::new();
            let id = helpdesk_kit::validate::uuid(&mut v, "ticket_id", &req.ticket_id);
            v.into_result()?;
            Scope::Key(id.unwrap_or_default().to_string())
        };
        let mut watch = self.live.watch(&c, scope).await?;
        let shutdown = self.streams.clone();
        Ok(Box::pin(async_stream::stream! {
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    next = watch.next() => next,
                };
                match next {
                    Some(Ok(msg)) if msg.is_event => {
                        if let Some(n) = notice(&msg.kind, &msg.key, &msg.payload) {
                            yield Ok(n);
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(status)) => {
                        yield Err(status);
                        break;
                    }
                    None => break,
                }
            }
        }))
    }
}
