//! Commands the ticketing service answers for the other services.

use helpdesk_kit::auth::Caller;
use helpdesk_kit::command::Answer;
use helpdesk_kit::error::{Error, Result, retry_conflicts};
use helpdesk_proto::ticketing::v1::run_ticket_action_request::Action;
use helpdesk_proto::ticketing::v1::*;
use prost_types::FieldMask;

use crate::grpc::Api;

/// Answers `run_action`: a ticket an automation rule creates from a conversation, or a
/// change it makes to one, with the checks staff calls get, once per idempotency key.
pub struct RunAction {
    pub api: Api,
}

/// Tries of a change made against a ticket that another change overtook.
const ETAG_ATTEMPTS: usize = 3;

impl Answer<RunTicketActionRequest> for RunAction {
    async fn answer(&self, req: RunTicketActionRequest) -> Result<RunTicketActionResponse> {
        let caller = helpdesk_kit::command::acting_caller(
            &req.account_id,
            &req.idempotency_key,
            req.origin.as_ref(),
        )?;
        let Some(action) = req.action.clone() else {
            return Err(helpdesk_kit::grpc::invalid_field("action", "required").into());
        };
        let key = req.idempotency_key.clone();
        helpdesk_kit::command::once::<RunTicketActionRequest, _, _>(
            &self.api.pool,
            &req.account_id,
            &req.idempotency_key,
            || async {
                let ticket = match action {
                    Action::CreateFromConversation(mut create) => {
                        // The ticket's own request id makes the creation exactly once.
                        create.request_id = helpdesk_kit::command::derived_id("rule", &key);
                        self.api
                            .create_from_conversation_impl(&caller, create)
                            .await?
                    }
                    Action::Update(change) => self.change(&caller, change).await?,
                };
                Ok(RunTicketActionResponse {
                    ticket: Some(ticket),
                })
            },
        )
        .await
    }
}

impl RunAction {
    /// Applies `change` against the ticket as it is now, again when another change
    /// overtook it.
    async fn change(&self, c: &Caller, change: TicketActionChange) -> Result<Ticket> {
        let mut attempt = 1;
        loop {
            let current = self
                .api
                .get_ticket_impl(
                    c,
                    GetTicketRequest {
                        id: change.ticket_id.clone(),
                        number: 0,
                    },
                )
                .await?;
            let mut next = Ticket {
                id: current.id.clone(),
                ..Default::default()
            };
            let mut paths = Vec::new();
            if !change.status.is_empty() && change.status != current.status {
                next.status = change.status.clone();
                paths.push("status".to_string());
            }
            if change.priority != 0 && change.priority != current.priority {
                next.priority = change.priority;
                paths.push("priority".to_string());
            }
            let mut tags = current.tags.clone();
            for tag in &change.add_tags {
                let tag = tag.trim().to_lowercase();
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
            tags.retain(|t| {
                !change
                    .remove_tags
                    .iter()
                    .any(|r| r.trim().eq_ignore_ascii_case(t))
            });
            if tags != current.tags {
                next.tags = tags;
                paths.push("tags".to_string());
            }
            if paths.is_empty() {
                return Ok(current);
            }
            let update = UpdateTicketRequest {
                ticket: Some(next),
                update_mask: Some(FieldMask { paths }),
                etag: current.etag.clone(),
            };
            match retry_conflicts(|| self.api.update_ticket_impl(c, update.clone())).await {
                Err(Error::Aborted(_)) if attempt < ETAG_ATTEMPTS => attempt += 1,
                other => return other,
            }
        }
    }
}
