//! Tickets: create, read, list and search, update.

use helpdesk_kit::auth::Caller;
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::page;
use helpdesk_kit::time::from_timestamp;
use helpdesk_proto::ticketing::v1::*;
use uuid::Uuid;

use super::input::{self, PATHS};
use super::{Api, customer_view, key};
use crate::domain::StorageName;
use crate::ops;
use crate::store::{config, tickets};

/// Longest search text.
const MAX_QUERY_CHARS: usize = 500;

impl Api {
    pub(crate) async fn create_ticket_impl(
        &self,
        c: &Caller,
        req: CreateTicketRequest,
    ) -> Result<Ticket> {
        let request_id = req.request_id.clone();
        match self.create_ticket_once(c, req).await {
            Err(e) => self.first_created(c, &request_id, e).await,
            ok => ok,
        }
    }

    async fn create_ticket_once(&self, c: &Caller, req: CreateTicketRequest) -> Result<Ticket> {
        c.claims.require_staff()?;
        let t = req.ticket.unwrap_or_default();
        let mut v = Violations::new();
        helpdesk_kit::validate::text(&mut v, "request_id", &req.request_id, false, 128);
        let source: TicketSource =
            helpdesk_kit::validate::enumeration(&mut v, "ticket.source", t.source);
        let source = if source == TicketSource::Unspecified {
            TicketSource::Api
        } else {
            source
        };
        let mut tx = self.pool.begin().await?;
        if !req.request_id.is_empty()
            && let Some(first) =
                tickets::by_request_id(&mut tx, c.account(), &req.request_id).await?
        {
            let statuses = config::statuses(&mut tx, c.account()).await?;
            return Ok(first.to_proto(&statuses));
        }
        let ctx = ops::context(&mut tx, c.account(), self.close_after).await?;
        let statuses = &ctx.statuses;
        let definitions = config::fields(&mut tx, c.account()).await?;
        let mut row = tickets::TicketRow::blank(c.account(), source);
        let wants = |f: &str| input::given(&t, f);
        input::apply(&mut v, &t, &wants, &mut row, statuses, &definitions);
        v.check(
            row.status_category == "closed",
            "ticket.status",
            "a new ticket cannot be closed",
        );
        v.into_result()?;
        row.request_id = Some(req.request_id.clone()).filter(|r| !r.is_empty());
        let row = ops::create(&mut tx, &c.origin(), row, None, &ctx).await?;
        tx.commit().await?;
        Ok(row.to_proto(statuses))
    }

    pub(crate) async fn get_ticket_impl(
        &self,
        c: &Caller,
        req: GetTicketRequest,
    ) -> Result<Ticket> {
        let mut v = Violations::new();
        let key = key(&mut v, &req.id, req.number);
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let t = self
            .visible(&mut conn, c, key.expect("checked"), false)
            .await?;
        let statuses = config::statuses(&mut conn, c.account()).await?;
        let proto = t.to_proto(&statuses);
        Ok(if c.contact.is_some() {
            customer_view(proto)
        } else {
            proto
        })
    }

    pub(crate) async fn get_ticket_status_impl(
        &self,
        c: &Caller,
        req: GetTicketStatusRequest,
    ) -> Result<TicketStatusView> {
        let t = self
            .get_ticket_impl(
                c,
                GetTicketRequest {
                    id: req.id,
                    number: req.number,
                },
            )
            .await?;
        Ok(TicketStatusView {
            ticket_id: t.id,
            number: t.number,
            subject: t.subject,
            external_status_label: t.external_status_label,
            status_category: t.status_category,
            update_time: t.update_time,
        })
    }

    pub(crate) async fn list_tickets_impl(
        &self,
        c: &Caller,
        req: ListTicketsRequest,
    ) -> Result<ListTicketsResponse> {
        let mut v = Violations::new();
        if c.contact.is_some() {
            // A customer filters by what it can see: status and dates; the rest (and
            // search, which covers internal notes) is staff's.
            for (field, used) in [
                ("statuses", !req.statuses.is_empty()),
                ("priorities", !req.priorities.is_empty()),
                ("types", !req.types.is_empty()),
                ("category", !req.category.is_empty()),
                ("assignee_id", !req.assignee_id.is_empty()),
                ("group_id", !req.group_id.is_empty()),
                ("tags", !req.tags.is_empty()),
                ("custom_fields", !req.custom_fields.is_empty()),
                ("follower_id", !req.follower_id.is_empty()),
                ("due_before", req.due_before.is_some()),
                ("query", !req.query.is_empty()),
            ] {
                v.check(used, field, "not available to customers");
            }
            let order = req.order_by.trim_start_matches('-');
            v.check(
                matches!(order, "priority" | "due"),
                "order_by",
                "customers sort by number, created or updated",
            );
        }
        let size = page::page_size(&mut v, req.page_size);
        let mut f = tickets::Filter {
            statuses: req.statuses.clone(),
            ..Default::default()
        };
        for (i, raw) in req.status_categories.iter().enumerate() {
            let cat: StatusCategory = helpdesk_kit::validate::enumeration(
                &mut v,
                &format!("status_categories[{i}]"),
                *raw,
            );
            f.categories.push(cat.storage_name().to_string());
        }
        for (i, raw) in req.priorities.iter().enumerate() {
            let p: TicketPriority =
                helpdesk_kit::validate::enumeration(&mut v, &format!("priorities[{i}]"), *raw);
            f.priorities.push(p.storage_name().to_string());
        }
        for (i, raw) in req.types.iter().enumerate() {
            let t: TicketType =
                helpdesk_kit::validate::enumeration(&mut v, &format!("types[{i}]"), *raw);
            f.types.push(t.storage_name().to_string());
        }
        f.category = Some(req.category.trim().to_string()).filter(|s| !s.is_empty());
        f.requester = helpdesk_kit::validate::opt_uuid(
            &mut v,
            "requester_contact_id",
            &req.requester_contact_id,
        );
        f.assignee = match req.assignee_id.as_str() {
            "" => None,
            "none" => Some(None),
            a => Some(Some(a.to_string())),
        };
        f.group = helpdesk_kit::validate::opt_uuid(&mut v, "group_id", &req.group_id);
        f.tags = req.tags.iter().map(|t| t.trim().to_lowercase()).collect();
        f.custom_fields = req.custom_fields.clone();
        if req.source != 0 {
            let s: TicketSource = helpdesk_kit::validate::enumeration(&mut v, "source", req.source);
            f.source = Some(s.storage_name().to_string());
        }
        f.conversation =
            helpdesk_kit::validate::opt_uuid(&mut v, "conversation_id", &req.conversation_id);
        f.follower = Some(req.follower_id.clone()).filter(|s| !s.is_empty());
        for (field, ts, slot) in [
            ("due_before", &req.due_before, &mut f.due_before),
            ("created_after", &req.created_after, &mut f.created_after),
            ("created_before", &req.created_before, &mut f.created_before),
        ] {
            if let Some(ts) = ts {
                *slot = from_timestamp(ts);
                v.check(slot.is_none(), field, "not a valid time");
            }
        }
        helpdesk_kit::validate::text(&mut v, "query", &req.query, false, MAX_QUERY_CHARS);
        f.query = Some(req.query.trim().to_string()).filter(|q| !q.is_empty());
        let order = req.order_by.trim();
        let (descending, name) = match order.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, order),
        };
        let sort = match name {
            "" | "number" => tickets::Sort::Number,
            "created" => tickets::Sort::Created,
            "updated" => tickets::Sort::Updated,
            "priority" => tickets::Sort::Priority,
            "due" => tickets::Sort::Due,
            _ => {
                v.add(
                    "order_by",
                    "number, created, updated, priority or due, with - for descending",
                );
                tickets::Sort::Number
            }
        };
        let after: Option<tickets::Cursor> = match req.page_token.as_str() {
            "" => None,
            t => {
                let cursor = page::decode_token(t).and_then(|s| serde_json::from_str(&s).ok());
                v.check(cursor.is_none(), "page_token", "malformed page token");
                cursor
            }
        };
        v.into_result()?;
        // A visitor lists only what it asked for itself.
        if let Some(contact) = c.contact {
            f.requester = Some(contact);
        }
        let mut conn = self.pool.acquire().await?;
        let mut rows = tickets::list(
            &mut conn,
            c.account(),
            &f,
            sort,
            descending,
            after.as_ref(),
            size + 1,
        )
        .await?;
        let next_page_token = page::paginate(&mut rows, size, |(t, value)| {
            serde_json::to_string(&tickets::Cursor {
                value: value.clone(),
                number: t.number,
            })
            .unwrap_or_default()
        });
        let statuses = config::statuses(&mut conn, c.account()).await?;
        let tickets = rows
            .iter()
            .map(|(t, _)| t.to_proto(&statuses))
            .map(|t| {
                if c.contact.is_some() {
                    customer_view(t)
                } else {
                    t
                }
            })
            .collect();
        Ok(ListTicketsResponse {
            tickets,
            next_page_token,
        })
    }

    pub(crate) async fn update_ticket_impl(
        &self,
        c: &Caller,
        req: UpdateTicketRequest,
    ) -> Result<Ticket> {
        c.claims.require_staff()?;
        let t = req.ticket.unwrap_or_default();
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        let id = helpdesk_kit::validate::uuid(&mut v, "ticket.id", &t.id);
        if paths.is_empty() {
            v.add("update_mask", format!("required: {}", PATHS.join(", ")));
        }
        for p in &paths {
            if !PATHS.contains(&p.as_str()) {
                v.add("update_mask", format!("unknown or read-only path {p:?}"));
            }
        }
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        let ctx = ops::context(&mut tx, c.account(), self.close_after).await?;
        let current = self
            .visible(
                &mut tx,
                c,
                tickets::Key::Id(id.unwrap_or_else(Uuid::nil)),
                true,
            )
            .await?;
        if !req.etag.is_empty() && req.etag != current.etag() {
            return Err(Error::Aborted(format!(
                "the ticket changed since {} (now {}): read it again",
                req.etag,
                current.etag()
            )));
        }
        let statuses = &ctx.statuses;
        let definitions = config::fields(&mut tx, c.account()).await?;
        let mut next = current.clone();
        let wants = |f: &str| paths.iter().any(|p| p == f);
        let mut v = Violations::new();
        input::apply(&mut v, &t, &wants, &mut next, statuses, &definitions);
        v.into_result()?;
        let stored = ops::update(&mut tx, &c.origin(), current, next, &paths, &ctx).await?;
        tx.commit().await?;
        Ok(stored.to_proto(statuses))
    }
}
