//! Business hours, routing rules and settings (admin).

use helpdesk_kit::auth::{Caller, Role};
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::routing::v1::*;
use uuid::Uuid;

use super::Api;
use crate::domain::hours::HoursSpec;
use crate::domain::permissions::Policy;
use crate::domain::rules::{Condition, Rule};
use crate::domain::{Settings, class_from_rank, class_rank};
use crate::store::config::{self, HoursRow, RuleRow};
use crate::store::directory;
use helpdesk_kit::error::{Error, Result};

fn opt_uuid(v: &mut Violations, field: &str, s: &str) -> Option<Uuid> {
    if s.is_empty() {
        return None;
    }
    let id = s.parse::<Uuid>().ok();
    v.check(id.is_none(), field, "must be a UUID");
    id
}

pub(super) async fn require_team(
    conn: &mut sqlx::PgConnection,
    account: &str,
    field: &str,
    team: Option<Uuid>,
) -> Result<()> {
    if let Some(t) = team
        && !directory::unknown_teams(conn, account, &[t])
            .await?
            .is_empty()
    {
        return Err(helpdesk_kit::grpc::invalid_field(field, "unknown team").into());
    }
    Ok(())
}

/// Refuses inbox ids that are not inboxes of the account, naming the field of each
/// (`fields[i]` for `ids[i]`).
async fn require_inboxes(
    pool: &sqlx::PgPool,
    account: &str,
    refs: &[(String, Uuid)],
) -> Result<()> {
    if refs.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = refs.iter().map(|(_, id)| *id).collect();
    let started = std::time::Instant::now();
    loop {
        let unknown = {
            let mut conn = pool.acquire().await?;
            directory::unknown_inboxes(&mut conn, account, &ids).await?
        };
        if unknown.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= super::ANNOUNCED_WAIT {
            let mut v = Violations::new();
            for (field, id) in refs.iter().filter(|(_, id)| unknown.contains(id)) {
                v.add(field, format!("unknown inbox {id}"));
            }
            v.into_result()?;
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn check_skills(v: &mut Violations, field: &str, skills: &[String]) -> Vec<String> {
    let out: Vec<String> = skills.iter().map(|s| s.trim().to_lowercase()).collect();
    for (i, s) in out.iter().enumerate() {
        if s.is_empty()
            || s.len() > 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            v.add(format!("{field}[{i}]"), "1-64 characters of [a-z0-9_-]");
        }
    }
    out
}

impl Api {
    pub(crate) async fn set_hours_impl(
        &self,
        c: &Caller,
        req: SetBusinessHoursRequest,
    ) -> Result<BusinessHours> {
        c.claims.require(&[Role::Admin])?;
        let h = req.hours.unwrap_or_default();
        let mut v = Violations::new();
        let team = opt_uuid(&mut v, "hours.team_id", &h.team_id);
        let inbox = opt_uuid(&mut v, "hours.inbox_id", &h.inbox_id);
        if h.team_id.is_empty() == h.inbox_id.is_empty() {
            v.add("hours.team_id", "exactly one of team_id and inbox_id");
        }
        let spec = HoursSpec::from_proto(&h, &mut v);
        let policy: OutsideHoursPolicy = helpdesk_kit::validate::enumeration(
            &mut v,
            "hours.outside_hours_policy",
            h.outside_hours_policy,
        );
        v.check(
            policy == OutsideHoursPolicy::Unspecified,
            "hours.outside_hours_policy",
            "leave_message or wait",
        );
        v.check(
            h.out_of_office_message.chars().count() > 2000,
            "hours.out_of_office_message",
            "at most 2000 characters",
        );
        v.into_result()?;
        let refs: Vec<_> = inbox
            .map(|i| ("hours.inbox_id".to_string(), i))
            .into_iter()
            .collect();
        require_inboxes(&self.pool, c.account(), &refs).await?;
        let mut tx = self.pool.begin().await?;
        require_team(&mut tx, c.account(), "hours.team_id", team).await?;
        let (scope, id) = match (team, inbox) {
            (Some(t), _) => ("team", t),
            (None, Some(i)) => ("inbox", i),
            (None, None) => {
                return Err(helpdesk_kit::grpc::invalid_field("hours.team_id", "required").into());
            }
        };
        let row = HoursRow {
            spec,
            out_of_office_message: h.out_of_office_message.clone(),
            policy,
        };
        config::save_hours(&mut tx, c.account(), scope, id, &row).await?;
        let hours = hours_proto(c.account(), scope, id, &row);
        let event = BusinessHoursUpdated {
            hours: Some(hours.clone()),
            ..Default::default()
        };
        helpdesk_kit::outbox::emit(&mut tx, &c.origin(), event).await?;
        tx.commit().await?;
        Ok(hours)
    }

    pub(crate) async fn get_hours_impl(
        &self,
        c: &Caller,
        req: GetBusinessHoursRequest,
    ) -> Result<BusinessHours> {
        c.claims.require_staff()?;
        let mut v = Violations::new();
        let team = opt_uuid(&mut v, "team_id", &req.team_id);
        let inbox = opt_uuid(&mut v, "inbox_id", &req.inbox_id);
        v.into_result()?;
        let (scope, id) = match (team, inbox) {
            (Some(t), None) => ("team", t),
            (None, Some(i)) => ("inbox", i),
            _ => {
                return Err(helpdesk_kit::grpc::invalid_field(
                    "team_id",
                    "exactly one of team_id and inbox_id",
                )
                .into());
            }
        };
        let mut conn = self.pool.acquire().await?;
        let row = config::hours(&mut conn, c.account(), scope, id)
            .await?
            .ok_or(Error::NotFound("business hours"))?;
        Ok(hours_proto(c.account(), scope, id, &row))
    }

    pub(crate) async fn create_rule_impl(
        &self,
        c: &Caller,
        req: CreateRoutingRuleRequest,
    ) -> Result<RoutingRule> {
        c.claims.require(&[Role::Admin])?;
        let r = req.rule.unwrap_or_default();
        let mut v = Violations::new();
        v.check(
            r.name.trim().is_empty() || r.name.chars().count() > 100,
            "rule.name",
            "required, at most 100 characters",
        );
        let team = opt_uuid(&mut v, "rule.target_team_id", &r.target_team_id);
        let skills = check_skills(&mut v, "rule.required_skills", &r.required_skills);
        let class = PriorityClass::try_from(r.priority_class);
        v.check(class.is_err(), "rule.priority_class", "unknown value");
        let strategy = Strategy::try_from(r.strategy);
        v.check(strategy.is_err(), "rule.strategy", "unknown value");
        let cond = r.condition.clone().unwrap_or_default();
        for (i, id) in cond.inbox_ids.iter().enumerate() {
            v.check(
                id.parse::<Uuid>().is_err(),
                &format!("rule.condition.inbox_ids[{i}]"),
                "must be a UUID",
            );
        }
        v.check(
            !(0..=4).contains(&cond.min_priority),
            "rule.condition.min_priority",
            "0 (any) or 1 low … 4 urgent",
        );
        v.check(
            cond.keywords
                .iter()
                .any(|k| k.trim().is_empty() || k.len() > 100),
            "rule.condition.keywords",
            "1-100 characters each",
        );
        v.into_result()?;
        let row = RuleRow {
            name: r.name.trim().to_string(),
            position: r.position,
            rule: Rule {
                id: Uuid::now_v7(),
                condition: Condition::from_proto(&cond),
                target_team_id: team,
                required_skills: skills,
                priority_class: class.unwrap_or_default(),
                strategy: strategy.unwrap_or_default(),
            },
        };
        let refs: Vec<_> = cond
            .inbox_ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| {
                Some((format!("rule.condition.inbox_ids[{i}]"), id.parse().ok()?))
            })
            .collect();
        require_inboxes(&self.pool, c.account(), &refs).await?;
        let mut tx = self.pool.begin().await?;
        require_team(&mut tx, c.account(), "rule.target_team_id", team).await?;
        config::insert_rule(&mut tx, c.account(), &row).await?;
        tx.commit().await?;
        Ok(rule_proto(c.account(), &row))
    }

    pub(crate) async fn list_rules_impl(&self, c: &Caller) -> Result<ListRoutingRulesResponse> {
        c.claims.require_staff()?;
        let mut conn = self.pool.acquire().await?;
        let rules = config::rules(&mut conn, c.account()).await?;
        Ok(ListRoutingRulesResponse {
            rules: rules.iter().map(|r| rule_proto(c.account(), r)).collect(),
        })
    }

    pub(crate) async fn delete_rule_impl(
        &self,
        c: &Caller,
        req: DeleteRoutingRuleRequest,
    ) -> Result<()> {
        c.claims.require(&[Role::Admin])?;
        let mut v = Violations::new();
        let id = opt_uuid(&mut v, "id", &req.id);
        v.check(req.id.is_empty(), "id", "required");
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        if config::delete_rule(&mut conn, c.account(), id.unwrap_or_default()).await? {
            Ok(())
        } else {
            Err(Error::NotFound("rule"))
        }
    }

    pub(crate) async fn get_settings_impl(&self, c: &Caller) -> Result<RoutingSettings> {
        c.claims.require_staff()?;
        let mut conn = self.pool.acquire().await?;
        Ok(config::settings(&mut conn, c.account())
            .await?
            .to_proto(c.account()))
    }

    pub(crate) async fn update_settings_impl(
        &self,
        c: &Caller,
        req: UpdateSettingsRequest,
    ) -> Result<RoutingSettings> {
        c.claims.require(&[Role::Admin])?;
        let s = req.settings.unwrap_or_default();
        let mut v = Violations::new();
        let strategy: Strategy = helpdesk_kit::validate::enumeration(
            &mut v,
            "settings.default_strategy",
            s.default_strategy,
        );
        let action: OverflowAction = helpdesk_kit::validate::enumeration(
            &mut v,
            "settings.overflow_action",
            s.overflow_action,
        );
        let offline: OfflinePolicy = helpdesk_kit::validate::enumeration(
            &mut v,
            "settings.offline_policy",
            s.offline_policy,
        );
        let team = opt_uuid(&mut v, "settings.overflow_team_id", &s.overflow_team_id);
        if let Some(p) = &s.transfer_policy {
            for (field, roles) in [
                ("transfer_roles", &p.transfer_roles),
                ("receiver_roles", &p.receiver_roles),
            ] {
                for (i, role) in roles.iter().enumerate() {
                    let field = format!("settings.transfer_policy.{field}[{i}]");
                    let _: StaffRole = helpdesk_kit::validate::enumeration(&mut v, &field, *role);
                    v.check(*role == 0, &field, "agent, supervisor or admin");
                }
            }
        }
        let defaults = Settings::default();
        for (field, value, max) in [
            (
                "settings.skill_fallback_seconds",
                s.skill_fallback_seconds,
                86_400,
            ),
            ("settings.max_queue_length", s.max_queue_length, 100_000),
            ("settings.max_wait_seconds", s.max_wait_seconds, 86_400),
            (
                "settings.presence_idle_seconds",
                s.presence_idle_seconds,
                86_400,
            ),
            (
                "settings.default_handle_seconds",
                s.default_handle_seconds,
                86_400,
            ),
            (
                "settings.transfer_timeout_seconds",
                s.transfer_timeout_seconds,
                3_600,
            ),
        ] {
            v.check(
                !(0..=max).contains(&value),
                field,
                &format!("must be 0..={max}"),
            );
        }
        v.check(
            action == OverflowAction::OverflowTeam && team.is_none(),
            "settings.overflow_team_id",
            "required with overflow action OVERFLOW_TEAM",
        );
        v.check(
            s.leave_message_text.chars().count() > 2000,
            "settings.leave_message_text",
            "at most 2000 characters",
        );
        v.into_result()?;
        let settings = Settings {
            default_strategy: if strategy == Strategy::Unspecified {
                defaults.default_strategy
            } else {
                strategy
            },
            skill_fallback_seconds: s.skill_fallback_seconds,
            max_queue_length: s.max_queue_length,
            max_wait_seconds: s.max_wait_seconds,
            overflow_action: if action == OverflowAction::Unspecified {
                defaults.overflow_action
            } else {
                action
            },
            overflow_team_id: team,
            leave_message_text: if s.leave_message_text.is_empty() {
                defaults.leave_message_text
            } else {
                s.leave_message_text
            },
            offline_policy: if offline == OfflinePolicy::Unspecified {
                defaults.offline_policy
            } else {
                offline
            },
            pooled_mode: s.pooled_mode,
            presence_idle_seconds: if s.presence_idle_seconds == 0 {
                defaults.presence_idle_seconds
            } else {
                s.presence_idle_seconds
            },
            default_handle_seconds: if s.default_handle_seconds == 0 {
                defaults.default_handle_seconds
            } else {
                s.default_handle_seconds
            },
            transfer_timeout_seconds: if s.transfer_timeout_seconds == 0 {
                defaults.transfer_timeout_seconds
            } else {
                s.transfer_timeout_seconds
            },
            transfer_policy: s
                .transfer_policy
                .as_ref()
                .map(Policy::from_proto)
                .unwrap_or_default(),
        };
        let mut tx = self.pool.begin().await?;
        require_team(&mut tx, c.account(), "settings.overflow_team_id", team).await?;
        config::save_settings(&mut tx, c.account(), &settings).await?;
        tx.commit().await?;
        Ok(settings.to_proto(c.account()))
    }
}

fn hours_proto(account: &str, scope: &str, id: Uuid, row: &HoursRow) -> BusinessHours {
    let mut h = row.spec.to_proto();
    h.account_id = account.to_string();
    if scope == "team" {
        h.team_id = id.to_string();
    } else {
        h.inbox_id = id.to_string();
    }
    h.out_of_office_message = row.out_of_office_message.clone();
    h.outside_hours_policy = row.policy as i32;
    h
}

fn rule_proto(account: &str, r: &RuleRow) -> RoutingRule {
    RoutingRule {
        id: r.rule.id.to_string(),
        account_id: account.to_string(),
        name: r.name.clone(),
        position: r.position,
        condition: Some(r.rule.condition.to_proto()),
        target_team_id: r
            .rule
            .target_team_id
            .map(|t| t.to_string())
            .unwrap_or_default(),
        required_skills: r.rule.required_skills.clone(),
        priority_class: if r.rule.priority_class == PriorityClass::Unspecified {
            0
        } else {
            class_from_rank(class_rank(r.rule.priority_class)) as i32
        },
        strategy: r.rule.strategy as i32,
    }
}
