//! gRPC API: parse, authorise, call ops, map to the contract.

mod bulk;
mod comments;
mod config;
mod from_chat;
mod input;
mod live;
mod sla;
mod tickets;

use std::time::Duration;

use helpdesk_kit::auth::Caller;
use helpdesk_kit::bus::Bus;
use helpdesk_kit::error::{Error, Result, retry_conflicts};
use helpdesk_proto::ticketing::v1::ticketing_service_server::TicketingService;
use helpdesk_proto::ticketing::v1::*;
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status};

use crate::store::tickets::{Key, TicketRow, by_request_id, get as get_ticket};

/// The ticketing API's shared state.
#[derive(Clone)]
pub struct Api {
    pub(crate) pool: PgPool,
    pub(crate) bus: Bus,
    /// How long after solving a ticket closes.
    pub(crate) close_after: chrono::Duration,
    /// Deadline of calls to other services.
    pub(crate) command_timeout: Duration,
    /// Live fan-out of the account's events to `WatchTickets` streams.
    pub(crate) live: helpdesk_kit::live::Hub,
    /// Cancelled when the service stops: live streams end with it.
    pub(crate) streams: helpdesk_kit::CancellationToken,
}

/// How a request names one ticket: an id, or a number.
fn key(v: &mut helpdesk_kit::grpc::Violations, id: &str, number: i64) -> Option<Key> {
    match (id.is_empty(), number) {
        (false, 0) => helpdesk_kit::validate::uuid(v, "id", id).map(Key::Id),
        (true, n) if n > 0 => Some(Key::Number(n)),
        (true, 0) => {
            v.add("id", "required (or number)");
            None
        }
        _ => {
            v.add(
                "number",
                "give an id or a number, not both (numbers are 1 or more)",
            );
            None
        }
    }
}

/// A unique-key violation: a retry with the same client-chosen id racing the first.
fn duplicate(e: &Error) -> bool {
    matches!(e, Error::Db(sqlx::Error::Database(d)) if d.is_unique_violation())
}

impl Api {
    /// The ticket created earlier with `request_id`, after a creation that collided
    /// with it (two retries of one request running at once).
    pub(crate) async fn first_created(
        &self,
        c: &Caller,
        request_id: &str,
        collided: Error,
    ) -> Result<Ticket> {
        if request_id.is_empty() || !duplicate(&collided) {
            return Err(collided);
        }
        let mut conn = self.pool.acquire().await?;
        let first = by_request_id(&mut conn, c.account(), request_id)
            .await?
            .ok_or(collided)?;
        let statuses = crate::store::config::statuses(&mut conn, c.account()).await?;
        Ok(first.to_proto(&statuses))
    }

    /// The ticket as the caller may see it: any of the account's for staff, only its
    /// own for a visitor (NOT_FOUND otherwise, as for a ticket that does not exist).
    pub(crate) async fn visible(
        &self,
        conn: &mut PgConnection,
        c: &Caller,
        key: Key,
        lock: bool,
    ) -> Result<TicketRow> {
        get_ticket(conn, c.account(), key, lock)
            .await?
            .filter(|t| c.contact.is_none() || t.requester_contact_id == c.contact)
            .ok_or(Error::NotFound("ticket"))
    }
}

/// What a customer reads of a ticket: its number, subject, description, the
/// external status and public dates; nothing internal.
pub(crate) fn customer_view(mut t: Ticket) -> Ticket {
    t.status_label = t.external_status_label.clone();
    t.status = String::new();
    t.assignee_id = String::new();
    t.group_id = String::new();
    t.tags = Vec::new();
    t.custom_fields = Default::default();
    t.follower_ids = Vec::new();
    t.device = None;
    t.comment_count = 0;
    t.category = String::new();
    t.priority = 0;
    t.r#type = 0;
    t.due_time = None;
    t.merged_into_id = String::new();
    t.sla_policy_id = String::new();
    t.sla = Vec::new();
    t
}

#[tonic::async_trait]
impl TicketingService for Api {
    async fn bulk_update_tickets(
        &self,
        r: Request<BulkUpdateTicketsRequest>,
    ) -> Result<Response<BulkUpdateTicketsResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.bulk_update_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn merge_tickets(
        &self,
        r: Request<MergeTicketsRequest>,
    ) -> Result<Response<Ticket>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.merge_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn create_ticket(
        &self,
        r: Request<CreateTicketRequest>,
    ) -> Result<Response<Ticket>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.create_ticket_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn create_ticket_from_conversation(
        &self,
        r: Request<CreateTicketFromConversationRequest>,
    ) -> Result<Response<Ticket>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.create_from_conversation_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn get_ticket(&self, r: Request<GetTicketRequest>) -> Result<Response<Ticket>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.get_ticket_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn list_tickets(
        &self,
        r: Request<ListTicketsRequest>,
    ) -> Result<Response<ListTicketsResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.list_tickets_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn update_ticket(
        &self,
        r: Request<UpdateTicketRequest>,
    ) -> Result<Response<Ticket>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.update_ticket_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn add_comment(
        &self,
        r: Request<AddCommentRequest>,
    ) -> Result<Response<Comment>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.add_comment_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn list_comments(
        &self,
        r: Request<ListCommentsRequest>,
    ) -> Result<Response<ListCommentsResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.list_comments_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn get_transcript(
        &self,
        r: Request<GetTranscriptRequest>,
    ) -> Result<Response<Transcript>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.get_transcript_impl(&c, r.into_inner()).await?,
        ))
    }

    type WatchTicketsStream = live::NoticeStream;

    async fn watch_tickets(
        &self,
        r: Request<WatchTicketsRequest>,
    ) -> Result<Response<Self::WatchTicketsStream>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.watch_tickets_impl(c, r.into_inner()).await?,
        ))
    }

    async fn list_ticket_events(
        &self,
        r: Request<ListTicketEventsRequest>,
    ) -> Result<Response<ListTicketEventsResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.list_events_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn get_ticket_status(
        &self,
        r: Request<GetTicketStatusRequest>,
    ) -> Result<Response<TicketStatusView>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.get_ticket_status_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn list_statuses(
        &self,
        r: Request<ListStatusesRequest>,
    ) -> Result<Response<ListStatusesResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.list_statuses_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn create_status(
        &self,
        r: Request<CreateStatusRequest>,
    ) -> Result<Response<helpdesk_proto::ticketing::v1::Status>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.create_status_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn list_field_definitions(
        &self,
        r: Request<ListFieldDefinitionsRequest>,
    ) -> Result<Response<ListFieldDefinitionsResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.list_fields_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn create_field_definition(
        &self,
        r: Request<CreateFieldDefinitionRequest>,
    ) -> Result<Response<FieldDefinition>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.create_field_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn create_calendar(
        &self,
        r: Request<CreateCalendarRequest>,
    ) -> Result<Response<Calendar>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.create_calendar_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn list_calendars(
        &self,
        r: Request<ListCalendarsRequest>,
    ) -> Result<Response<ListCalendarsResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.list_calendars_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn create_sla_policy(
        &self,
        r: Request<CreateSlaPolicyRequest>,
    ) -> Result<Response<SlaPolicy>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.create_policy_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn list_sla_policies(
        &self,
        r: Request<ListSlaPoliciesRequest>,
    ) -> Result<Response<ListSlaPoliciesResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.list_policies_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn delete_sla_policy(
        &self,
        r: Request<DeleteSlaPolicyRequest>,
    ) -> Result<Response<DeleteSlaPolicyResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.delete_policy_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn update_calendar(
        &self,
        r: Request<UpdateCalendarRequest>,
    ) -> Result<Response<Calendar>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.update_calendar_impl(&c, r.get_ref().clone())).await?,
        ))
    }
}
