//! gRPC API: parse, authorise, call ops, map to the contract.

use helpdesk_kit::auth::{Caller, Role};
use helpdesk_kit::error::{Error, Result, retry_conflicts};
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::page::{decode_time_cursor, decode_token, page_size, paginate, time_cursor};
use helpdesk_kit::storage::StorageName;
use helpdesk_proto::automation::v1::automation_service_server::AutomationService;
use helpdesk_proto::automation::v1::*;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::cache::RuleCache;
use crate::domain::facts::Facts;
use crate::domain::rules::{Needs, check_macro, compile, describe};
use crate::ops;
use crate::store;

/// The automation API's shared state.
#[derive(Clone)]
pub struct Api {
    pub(crate) pool: PgPool,
    pub(crate) cache: RuleCache,
    /// Does macros' actions.
    pub(crate) runner: std::sync::Arc<crate::ops::run::Runner>,
}

/// Macro paths `UpdateMacro` may change.
const MACRO_PATHS: &[&str] = &["name", "description", "actions"];

/// A name taken by another macro of the account.
fn name_taken(e: Error) -> Error {
    match e {
        Error::Db(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            helpdesk_kit::grpc::invalid_field("macro.name", "another macro has this name").into()
        }
        other => other,
    }
}

/// Rules are the account's configuration: admins and integrations.
fn manager(c: &Caller) -> Result<(), Status> {
    c.claims.require(&[Role::Admin, Role::Integration])
}

fn id(field: &str, value: &str) -> Result<Uuid, Status> {
    let mut v = Violations::new();
    let id = helpdesk_kit::validate::uuid(&mut v, field, value);
    v.into_result()?;
    Ok(id.unwrap_or_default())
}

/// What `UpdateRule` may change.
const UPDATE_PATHS: &[&str] = &[
    "name",
    "description",
    "active",
    "position",
    "event",
    "conditions",
    "actions",
    "delay",
];

impl Api {
    async fn create_impl(&self, c: &Caller, req: CreateRuleRequest) -> Result<Rule> {
        let rule = req.rule.unwrap_or_default();
        let mut v = Violations::new();
        compile(&mut v, "rule", &rule);
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        let rule = ops::rules::create(&mut tx, &c.origin(), rule).await?;
        tx.commit().await?;
        self.cache.invalidate(c.account());
        Ok(rule)
    }

    async fn update_impl(&self, c: &Caller, req: UpdateRuleRequest) -> Result<Rule> {
        let input = req.rule.unwrap_or_default();
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        let rule_id = helpdesk_kit::validate::uuid(&mut v, "rule.id", &input.id);
        if paths.is_empty() {
            v.add(
                "update_mask",
                format!("required: {}", UPDATE_PATHS.join(", ")),
            );
        }
        for p in &paths {
            if !UPDATE_PATHS.contains(&p.as_str()) {
                v.add("update_mask", format!("unknown or read-only path {p:?}"));
            }
        }
        v.into_result()?;
        let rule_id = rule_id.unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        let mut next = store::rules::get(&mut tx, c.account(), rule_id)
            .await?
            .ok_or(Error::NotFound("rule"))?;
        for p in &paths {
            match p.as_str() {
                "name" => next.name = input.name.clone(),
                "description" => next.description = input.description.clone(),
                "active" => next.active = input.active,
                // 0 (or less): last, as on create.
                "position" => {
                    next.position = if input.position <= 0 {
                        i32::MAX
                    } else {
                        input.position
                    }
                }
                "event" => next.event = input.event.clone(),
                "conditions" => next.conditions = input.conditions.clone(),
                "actions" => next.actions = input.actions.clone(),
                "delay" => next.delay = input.delay,
                _ => {}
            }
        }
        let mut v = Violations::new();
        compile(&mut v, "rule", &next);
        v.into_result()?;
        let rule = ops::rules::update(&mut tx, &c.origin(), rule_id, next).await?;
        tx.commit().await?;
        self.cache.invalidate(c.account());
        Ok(rule)
    }

    async fn delete_impl(&self, c: &Caller, req: DeleteRuleRequest) -> Result<DeleteRuleResponse> {
        let rule_id = id("id", &req.id)?;
        let mut tx = self.pool.begin().await?;
        ops::rules::delete(&mut tx, &c.origin(), rule_id).await?;
        tx.commit().await?;
        self.cache.invalidate(c.account());
        Ok(DeleteRuleResponse {})
    }

    async fn list_impl(&self, c: &Caller, req: ListRulesRequest) -> Result<ListRulesResponse> {
        let mut v = Violations::new();
        let size = page_size(&mut v, req.page_size);
        let after = match req.page_token.as_str() {
            "" => Some(0),
            t => decode_token(t).and_then(|s| s.strip_prefix("p:")?.parse::<i32>().ok()),
        };
        v.check(
            after.is_none(),
            "page_token",
            "not a token this service issued",
        );
        v.check(
            !req.event.is_empty() && !crate::domain::rules::EVENTS.contains(&req.event.as_str()),
            "event",
            "unknown event",
        );
        v.into_result()?;
        let event = Some(req.event.as_str()).filter(|e| !e.is_empty());
        let mut conn = self.pool.acquire().await?;
        let mut rules = store::rules::list(
            &mut conn,
            c.account(),
            event,
            after.unwrap_or(0),
            size as i64 + 1,
        )
        .await?;
        let next_page_token = paginate(&mut rules, size, |r| format!("p:{}", r.position));
        Ok(ListRulesResponse {
            rules,
            next_page_token,
        })
    }

    /// The rule a dry run evaluates: a stored one or a checked draft.
    async fn dry_run_rule(
        &self,
        c: &Caller,
        req: &DryRunRuleRequest,
    ) -> Result<crate::domain::rules::Compiled> {
        let rule = match (&req.rule, req.rule_id.as_str()) {
            (Some(draft), "") => draft.clone(),
            (None, rule_id) if !rule_id.is_empty() => {
                let rule_id = id("rule_id", rule_id)?;
                let mut conn = self.pool.acquire().await?;
                store::rules::get(&mut conn, c.account(), rule_id)
                    .await?
                    .ok_or(Error::NotFound("rule"))?
            }
            _ => {
                return Err(helpdesk_kit::grpc::invalid_field(
                    "rule_id",
                    "give a stored rule's id or a draft rule (one of them)",
                )
                .into());
            }
        };
        let mut v = Violations::new();
        let compiled = compile(&mut v, "rule", &rule);
        v.into_result()?;
        Ok(compiled.expect("checked"))
    }

    async fn dry_run_impl(&self, c: &Caller, req: DryRunRuleRequest) -> Result<DryRunRuleResponse> {
        let rule = self.dry_run_rule(c, &req).await?;
        let given = [
            !req.conversation_id.is_empty(),
            !req.ticket_id.is_empty(),
            req.sample.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(helpdesk_kit::grpc::invalid_field(
                "conversation_id",
                "give one of conversation_id, ticket_id or sample",
            )
            .into());
        }
        let account = c.account();
        let mut conn = self.pool.acquire().await?;
        let mut facts = Facts::default();
        if !req.conversation_id.is_empty() {
            let state = store::facts::conversation(&mut conn, account, &req.conversation_id)
                .await?
                .ok_or(Error::NotFound("conversation"))?;
            facts.conversation = Some(state.conversation);
        } else if !req.ticket_id.is_empty() {
            let (ticket, _) = store::facts::ticket(&mut conn, account, &req.ticket_id)
                .await?
                .ok_or(Error::NotFound("ticket"))?;
            if let Some(first) = ticket.conversation_ids.first()
                && let Some(state) = store::facts::conversation(&mut conn, account, first).await?
            {
                facts.conversation = Some(state.conversation);
            }
            facts.ticket = Some(ticket);
        } else if let Some(s) = req.sample {
            if !s.event.is_empty() && !crate::domain::rules::EVENTS.contains(&s.event.as_str()) {
                return Err(
                    helpdesk_kit::grpc::invalid_field("sample.event", "unknown event").into(),
                );
            }
            facts = Facts {
                conversation: s.conversation,
                previous_conversation: s.previous_conversation,
                message: s.message,
                contact: s.contact,
                inbox: None,
                ticket: s.ticket,
                previous_ticket: s.previous_ticket,
                csat: (s.csat_rating != 0 || !s.csat_comment.is_empty())
                    .then_some((s.csat_rating, s.csat_comment)),
                ..Default::default()
            };
        }
        // Everything a condition may read.
        let all = Needs {
            contact: true,
            inbox: true,
            hours: true,
            state: false,
        };
        store::facts::complete(&mut conn, account, &mut facts, all).await?;
        let (matched, conditions) = rule.explain(&facts);
        Ok(DryRunRuleResponse {
            matched,
            conditions,
            actions: rule.rule.actions.iter().map(describe).collect(),
        })
    }

    async fn create_macro_impl(&self, c: &Caller, req: CreateMacroRequest) -> Result<Macro> {
        let mut m = req.r#macro.unwrap_or_default();
        let mut v = Violations::new();
        check_macro(&mut v, "macro", &m);
        v.into_result()?;
        m.id = Uuid::now_v7().to_string();
        m.account_id = c.account().to_string();
        m.name = m.name.trim().to_string();
        let mut conn = self.pool.acquire().await?;
        store::macros::save(&mut conn, &m)
            .await
            .map_err(|e| name_taken(e.into()))
    }

    async fn update_macro_impl(&self, c: &Caller, req: UpdateMacroRequest) -> Result<Macro> {
        let input = req.r#macro.unwrap_or_default();
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        let macro_id = helpdesk_kit::validate::uuid(&mut v, "macro.id", &input.id);
        if paths.is_empty() {
            v.add(
                "update_mask",
                format!("required: {}", MACRO_PATHS.join(", ")),
            );
        }
        for p in &paths {
            if !MACRO_PATHS.contains(&p.as_str()) {
                v.add("update_mask", format!("unknown or read-only path {p:?}"));
            }
        }
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let mut m = store::macros::get(&mut conn, c.account(), macro_id.unwrap_or_default())
            .await?
            .ok_or(Error::NotFound("macro"))?;
        for p in &paths {
            match p.as_str() {
                "name" => m.name = input.name.trim().to_string(),
                "description" => m.description = input.description.clone(),
                "actions" => m.actions = input.actions.clone(),
                _ => {}
            }
        }
        let mut v = Violations::new();
        check_macro(&mut v, "macro", &m);
        v.into_result()?;
        store::macros::save(&mut conn, &m)
            .await
            .map_err(|e| name_taken(e.into()))
    }

    async fn list_macros_impl(
        &self,
        c: &Caller,
        req: ListMacrosRequest,
    ) -> Result<ListMacrosResponse> {
        let mut v = Violations::new();
        let size = page_size(&mut v, req.page_size);
        let after = match req.page_token.as_str() {
            "" => Some(String::new()),
            t => decode_token(t).and_then(|s| s.strip_prefix("n:").map(str::to_string)),
        };
        v.check(
            after.is_none(),
            "page_token",
            "not a token this service issued",
        );
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let mut macros = store::macros::list(
            &mut conn,
            c.account(),
            &after.unwrap_or_default(),
            size as i64 + 1,
        )
        .await?;
        let next_page_token = paginate(&mut macros, size, |m| {
            format!("n:{}", m.name.to_lowercase())
        });
        Ok(ListMacrosResponse {
            macros,
            next_page_token,
        })
    }

    async fn apply_macro_impl(
        &self,
        c: &Caller,
        req: ApplyMacroRequest,
    ) -> Result<ApplyMacroResponse> {
        let mut v = Violations::new();
        let macro_id = helpdesk_kit::validate::uuid(&mut v, "macro_id", &req.macro_id);
        helpdesk_kit::validate::uuid(&mut v, "conversation_id", &req.conversation_id);
        helpdesk_kit::validate::text(&mut v, "request_id", &req.request_id, true, 100);
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let m = store::macros::get(&mut conn, c.account(), macro_id.unwrap_or_default())
            .await?
            .ok_or(Error::NotFound("macro"))?;
        drop(conn);
        let results = ops::macros::apply(
            &self.runner,
            c.account(),
            c.actor(),
            &m,
            &req.conversation_id,
            &req.request_id,
        )
        .await?;
        Ok(ApplyMacroResponse { results })
    }

    async fn runs_impl(
        &self,
        c: &Caller,
        req: ListRuleRunsRequest,
    ) -> Result<ListRuleRunsResponse> {
        let mut v = Violations::new();
        let size = page_size(&mut v, req.page_size);
        let rule_id = (!req.rule_id.is_empty())
            .then(|| helpdesk_kit::validate::uuid(&mut v, "rule_id", &req.rule_id))
            .flatten();
        let outcome: RunOutcome =
            helpdesk_kit::validate::enumeration(&mut v, "outcome", req.outcome);
        let before = decode_time_cursor(&mut v, &req.page_token);
        v.check(
            req.conversation_id.len() > 64,
            "conversation_id",
            "at most 64 characters",
        );
        v.check(
            req.ticket_id.len() > 64,
            "ticket_id",
            "at most 64 characters",
        );
        v.into_result()?;
        let filter = store::runs::Filter {
            rule_id,
            conversation_id: Some(req.conversation_id).filter(|s| !s.is_empty()),
            ticket_id: Some(req.ticket_id).filter(|s| !s.is_empty()),
            outcome: (outcome != RunOutcome::Unspecified).then(|| outcome.storage_name()),
        };
        let mut conn = self.pool.acquire().await?;
        let mut rows =
            store::runs::list(&mut conn, c.account(), &filter, before, size as i64 + 1).await?;
        let next_page_token = paginate(&mut rows, size, |(t, id, _)| time_cursor(*t, *id));
        Ok(ListRuleRunsResponse {
            runs: rows.into_iter().map(|(_, _, r)| r).collect(),
            next_page_token,
        })
    }
}

#[tonic::async_trait]
impl AutomationService for Api {
    async fn create_rule(&self, r: Request<CreateRuleRequest>) -> Result<Response<Rule>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        let req = r.into_inner();
        Ok(Response::new(
            retry_conflicts(|| self.create_impl(&c, req.clone())).await?,
        ))
    }

    async fn get_rule(&self, r: Request<GetRuleRequest>) -> Result<Response<Rule>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        let rule_id = id("id", &r.get_ref().id)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let rule = store::rules::get(&mut conn, c.account(), rule_id)
            .await
            .map_err(Error::from)?
            .ok_or(Error::NotFound("rule"))?;
        Ok(Response::new(rule))
    }

    async fn list_rules(
        &self,
        r: Request<ListRulesRequest>,
    ) -> Result<Response<ListRulesResponse>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        Ok(Response::new(self.list_impl(&c, r.into_inner()).await?))
    }

    async fn update_rule(&self, r: Request<UpdateRuleRequest>) -> Result<Response<Rule>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        let req = r.into_inner();
        Ok(Response::new(
            retry_conflicts(|| self.update_impl(&c, req.clone())).await?,
        ))
    }

    async fn delete_rule(
        &self,
        r: Request<DeleteRuleRequest>,
    ) -> Result<Response<DeleteRuleResponse>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        let req = r.into_inner();
        Ok(Response::new(
            retry_conflicts(|| self.delete_impl(&c, req.clone())).await?,
        ))
    }

    async fn dry_run_rule(
        &self,
        r: Request<DryRunRuleRequest>,
    ) -> Result<Response<DryRunRuleResponse>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        Ok(Response::new(self.dry_run_impl(&c, r.into_inner()).await?))
    }

    async fn list_rule_runs(
        &self,
        r: Request<ListRuleRunsRequest>,
    ) -> Result<Response<ListRuleRunsResponse>, Status> {
        let c = Caller::of(&r)?;
        c.claims
            .require(&[Role::Admin, Role::Supervisor, Role::Integration])?;
        Ok(Response::new(self.runs_impl(&c, r.into_inner()).await?))
    }

    async fn create_macro(
        &self,
        r: Request<CreateMacroRequest>,
    ) -> Result<Response<Macro>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        Ok(Response::new(
            self.create_macro_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn list_macros(
        &self,
        r: Request<ListMacrosRequest>,
    ) -> Result<Response<ListMacrosResponse>, Status> {
        let c = Caller::of(&r)?;
        c.claims.require_staff()?;
        Ok(Response::new(
            self.list_macros_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn update_macro(
        &self,
        r: Request<UpdateMacroRequest>,
    ) -> Result<Response<Macro>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        Ok(Response::new(
            self.update_macro_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn delete_macro(
        &self,
        r: Request<DeleteMacroRequest>,
    ) -> Result<Response<DeleteMacroResponse>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        let macro_id = id("id", &r.get_ref().id)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        if !store::macros::delete(&mut conn, c.account(), macro_id)
            .await
            .map_err(Error::from)?
        {
            return Err(Error::NotFound("macro").into());
        }
        Ok(Response::new(DeleteMacroResponse {}))
    }

    async fn apply_macro(
        &self,
        r: Request<ApplyMacroRequest>,
    ) -> Result<Response<ApplyMacroResponse>, Status> {
        let c = Caller::of(&r)?;
        c.claims.require_staff()?;
        Ok(Response::new(
            self.apply_macro_impl(&c, r.into_inner()).await?,
        ))
    }
}
