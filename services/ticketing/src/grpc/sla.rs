//! Calendars and SLA policies.

use helpdesk_kit::auth::{Caller, Role};
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::ticketing::v1::*;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::Api;
use crate::domain::StorageName;
use crate::domain::calendar::CalendarSpec;
use crate::domain::sla::{Filter, Target};
use crate::ops;
use crate::store::sla::{self as store, CalendarRow, PolicyRow};
use crate::store::tickets::{self, Key};

/// Most calendars and policies an account keeps; most targets of one policy.
const MAX_CALENDARS: usize = 50;
const MAX_POLICIES: usize = 100;
const MAX_TARGETS: usize = 30;
/// Longest target: a year.
const MAX_TARGET_SECONDS: i64 = 366 * 24 * 3600;

/// Checks a calendar as a request sends it (fields under `calendar.`).
fn calendar_row(v: &mut Violations, cal: &Calendar, id: Uuid) -> CalendarRow {
    helpdesk_kit::validate::text(v, "calendar.name", &cal.name, true, 100);
    let spec = CalendarSpec {
        time_zone: cal.time_zone.clone(),
        weekly: cal
            .weekly
            .iter()
            .map(|r| {
                (
                    u32::try_from(r.weekday).unwrap_or(0),
                    r.start.clone(),
                    r.end.clone(),
                )
            })
            .collect(),
        holidays: cal.holidays.clone(),
    };
    spec.check(v);
    CalendarRow {
        id,
        name: cal.name.trim().to_string(),
        spec: Json(spec),
    }
}

fn calendar_proto(c: &CalendarRow) -> Calendar {
    let spec = &c.spec.0;
    Calendar {
        id: c.id.to_string(),
        name: c.name.clone(),
        time_zone: spec.time_zone.clone(),
        weekly: spec
            .weekly
            .iter()
            .map(|(day, start, end)| CalendarRange {
                weekday: *day as i32,
                start: start.clone(),
                end: end.clone(),
            })
            .collect(),
        holidays: spec.holidays.clone(),
    }
}

fn policy_proto(p: &PolicyRow) -> SlaPolicy {
    let f = &p.filter.0;
    SlaPolicy {
        id: p.id.to_string(),
        name: p.name.clone(),
        position: p.position,
        priorities: f
            .priorities
            .iter()
            .map(|x| TicketPriority::from_storage(x) as i32)
            .collect(),
        types: f
            .types
            .iter()
            .map(|x| TicketType::from_storage(x) as i32)
            .collect(),
        categories: f.categories.clone(),
        group_ids: f.group_ids.iter().map(Uuid::to_string).collect(),
        tags: f.tags.clone(),
        custom_fields: f.custom_fields.clone(),
        targets: p
            .targets
            .0
            .iter()
            .map(|t| SlaPolicyTarget {
                priority: if t.priority.is_empty() {
                    0
                } else {
                    TicketPriority::from_storage(&t.priority) as i32
                },
                metric: SlaMetric::from_storage(&t.metric) as i32,
                seconds: t.seconds,
                business_hours: t.business_hours,
            })
            .collect(),
        calendar_id: p.calendar_id.map(|c| c.to_string()).unwrap_or_default(),
        warning_seconds: p.warning_seconds,
    }
}

impl Api {
    pub(crate) async fn create_calendar_impl(
        &self,
        c: &Caller,
        req: CreateCalendarRequest,
    ) -> Result<Calendar> {
        c.claims.require(&[Role::Admin])?;
        let cal = req.calendar.unwrap_or_default();
        let mut v = Violations::new();
        let row = calendar_row(&mut v, &cal, Uuid::now_v7());
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        if store::calendars(&mut tx, c.account()).await?.len() >= MAX_CALENDARS {
            return Err(Error::FailedPrecondition(format!(
                "an account has at most {MAX_CALENDARS} calendars"
            )));
        }
        store::insert_calendar(&mut tx, c.account(), &row).await?;
        tx.commit().await?;
        Ok(calendar_proto(&row))
    }

    pub(crate) async fn update_calendar_impl(
        &self,
        c: &Caller,
        req: UpdateCalendarRequest,
    ) -> Result<Calendar> {
        c.claims.require(&[Role::Admin])?;
        let cal = req.calendar.unwrap_or_default();
        let mut v = Violations::new();
        let id = helpdesk_kit::validate::uuid(&mut v, "calendar.id", &cal.id);
        let row = calendar_row(&mut v, &cal, id.unwrap_or_else(Uuid::nil));
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        store::hold_policies(&mut tx, c.account(), true).await?;
        if !store::update_calendar(&mut tx, c.account(), &row).await? {
            return Err(Error::NotFound("calendar"));
        }
        self.recompute(&mut tx, c.account()).await?;
        tx.commit().await?;
        Ok(calendar_proto(&row))
    }

    pub(crate) async fn list_calendars_impl(
        &self,
        c: &Caller,
        _: ListCalendarsRequest,
    ) -> Result<ListCalendarsResponse> {
        c.claims.require_staff()?;
        let mut conn = self.pool.acquire().await?;
        Ok(ListCalendarsResponse {
            calendars: store::calendars(&mut conn, c.account())
                .await?
                .iter()
                .map(calendar_proto)
                .collect(),
        })
    }

    pub(crate) async fn create_policy_impl(
        &self,
        c: &Caller,
        req: CreateSlaPolicyRequest,
    ) -> Result<SlaPolicy> {
        c.claims.require(&[Role::Admin])?;
        let p = req.policy.unwrap_or_default();
        let mut v = Violations::new();
        helpdesk_kit::validate::text(&mut v, "policy.name", &p.name, true, 100);
        let mut filter = Filter::default();
        for (i, raw) in p.priorities.iter().enumerate() {
            let field = format!("policy.priorities[{i}]");
            let x: TicketPriority = helpdesk_kit::validate::enumeration(&mut v, &field, *raw);
            v.check(*raw == 0, &field, "low, normal, high or urgent");
            filter.priorities.push(x.storage_name().to_string());
        }
        for (i, raw) in p.types.iter().enumerate() {
            let field = format!("policy.types[{i}]");
            let x: TicketType = helpdesk_kit::validate::enumeration(&mut v, &field, *raw);
            v.check(*raw == 0, &field, "question, incident, problem or task");
            filter.types.push(x.storage_name().to_string());
        }
        filter.categories = p.categories.iter().map(|s| s.trim().to_string()).collect();
        for (i, g) in p.group_ids.iter().enumerate() {
            if let Some(g) =
                helpdesk_kit::validate::uuid(&mut v, &format!("policy.group_ids[{i}]"), g)
            {
                filter.group_ids.push(g);
            }
        }
        filter.tags = p.tags.iter().map(|t| t.trim().to_lowercase()).collect();
        filter.custom_fields = p.custom_fields.clone();
        v.check(
            p.targets.is_empty() || p.targets.len() > MAX_TARGETS,
            "policy.targets",
            &format!("1-{MAX_TARGETS} targets"),
        );
        let mut targets = Vec::new();
        for (i, t) in p.targets.iter().enumerate() {
            let field = format!("policy.targets[{i}]");
            let priority: TicketPriority = helpdesk_kit::validate::enumeration(
                &mut v,
                &format!("{field}.priority"),
                t.priority,
            );
            let metric: SlaMetric =
                helpdesk_kit::validate::enumeration(&mut v, &format!("{field}.metric"), t.metric);
            v.check(
                t.metric == 0,
                &format!("{field}.metric"),
                "first_reply, next_reply, periodic_update, resolution, agent_work or requester_wait",
            );
            v.check(
                !(1..=MAX_TARGET_SECONDS).contains(&t.seconds),
                &format!("{field}.seconds"),
                &format!("1..={MAX_TARGET_SECONDS}"),
            );
            v.check(
                t.business_hours && p.calendar_id.is_empty(),
                &format!("{field}.business_hours"),
                "needs the policy's calendar_id",
            );
            let same = targets.iter().any(|x: &Target| {
                x.metric == metric.storage_name()
                    && x.priority
                        == if t.priority == 0 {
                            ""
                        } else {
                            priority.storage_name()
                        }
            });
            v.check(
                same,
                &field,
                "a target for this metric and priority is listed already",
            );
            targets.push(Target {
                priority: if t.priority == 0 {
                    String::new()
                } else {
                    priority.storage_name().to_string()
                },
                metric: metric.storage_name().to_string(),
                seconds: t.seconds,
                business_hours: t.business_hours,
            });
        }
        let calendar =
            helpdesk_kit::validate::opt_uuid(&mut v, "policy.calendar_id", &p.calendar_id);
        v.check(
            !(0..=MAX_TARGET_SECONDS).contains(&p.warning_seconds),
            "policy.warning_seconds",
            &format!("0..={MAX_TARGET_SECONDS}"),
        );
        v.into_result()?;
        let row = PolicyRow {
            id: Uuid::now_v7(),
            name: p.name.trim().to_string(),
            position: p.position,
            filter: Json(filter),
            targets: Json(targets),
            calendar_id: calendar,
            warning_seconds: p.warning_seconds,
        };
        let mut tx = self.pool.begin().await?;
        store::hold_policies(&mut tx, c.account(), true).await?;
        if let Some(id) = calendar
            && !store::calendars(&mut tx, c.account())
                .await?
                .iter()
                .any(|c| c.id == id)
        {
            return Err(helpdesk_kit::grpc::invalid_field(
                "policy.calendar_id",
                "unknown calendar",
            )
            .into());
        }
        if store::policies(&mut tx, c.account()).await?.len() >= MAX_POLICIES {
            return Err(Error::FailedPrecondition(format!(
                "an account has at most {MAX_POLICIES} SLA policies"
            )));
        }
        store::insert_policy(&mut tx, c.account(), &row).await?;
        self.recompute(&mut tx, c.account()).await?;
        tx.commit().await?;
        Ok(policy_proto(&row))
    }

    pub(crate) async fn list_policies_impl(
        &self,
        c: &Caller,
        _: ListSlaPoliciesRequest,
    ) -> Result<ListSlaPoliciesResponse> {
        c.claims.require_staff()?;
        let mut conn = self.pool.acquire().await?;
        Ok(ListSlaPoliciesResponse {
            policies: store::policies(&mut conn, c.account())
                .await?
                .iter()
                .map(policy_proto)
                .collect(),
        })
    }

    pub(crate) async fn delete_policy_impl(
        &self,
        c: &Caller,
        req: DeleteSlaPolicyRequest,
    ) -> Result<DeleteSlaPolicyResponse> {
        c.claims.require(&[Role::Admin])?;
        let mut v = Violations::new();
        let id = helpdesk_kit::validate::uuid(&mut v, "id", &req.id);
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        store::hold_policies(&mut tx, c.account(), true).await?;
        if !store::delete_policy(&mut tx, c.account(), id.unwrap_or_else(Uuid::nil)).await? {
            return Err(Error::NotFound("SLA policy"));
        }
        self.recompute(&mut tx, c.account()).await?;
        tx.commit().await?;
        Ok(DeleteSlaPolicyResponse {})
    }

    /// The policies changed: every ticket not closed gets its policy chosen again and
    /// its deadlines derived again from its log.
    async fn recompute(&self, conn: &mut PgConnection, account: &str) -> Result<()> {
        let policies = ops::sla::policies(conn, account).await?;
        for id in store::open_tickets(conn, account).await? {
            if let Some(t) = tickets::get(conn, account, Key::Id(id), true).await? {
                ops::sla::refresh(conn, t, None, &policies).await?;
            }
        }
        Ok(())
    }
}
