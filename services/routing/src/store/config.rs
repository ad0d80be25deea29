//! Settings, routing rules and business hours.

use helpdesk_proto::routing::v1::{
    OfflinePolicy, OutsideHoursPolicy, OverflowAction, PriorityClass, Strategy,
};
use sqlx::types::Json;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::domain::hours::HoursSpec;
use crate::domain::permissions::Policy;
use crate::domain::rules::{Condition, Rule};
use crate::domain::{Settings, class_from_rank, class_rank};
use helpdesk_kit::storage::StorageName;

/// The account's settings (defaults when never set).
pub async fn settings(conn: &mut PgConnection, account: &str) -> Result<Settings, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM settings WHERE account_id = $1")
        .bind(account)
        .fetch_optional(conn)
        .await?;
    Ok(match row {
        None => Settings::default(),
        Some(r) => Settings {
            default_strategy: Strategy::from_storage(r.get("default_strategy")),
            skill_fallback_seconds: r.get("skill_fallback_seconds"),
            max_queue_length: r.get("max_queue_length"),
            max_wait_seconds: r.get("max_wait_seconds"),
            overflow_action: OverflowAction::from_storage(r.get("overflow_action")),
            overflow_team_id: r.get("overflow_team_id"),
            leave_message_text: r.get("leave_message_text"),
            offline_policy: OfflinePolicy::from_storage(r.get("offline_policy")),
            pooled_mode: r.get("pooled_mode"),
            presence_idle_seconds: r.get("presence_idle_seconds"),
            default_handle_seconds: r.get("default_handle_seconds"),
            transfer_timeout_seconds: r.get("transfer_timeout_seconds"),
            transfer_policy: r
                .get::<Option<Json<Policy>>, _>("transfer_policy")
                .map(|p| p.0)
                .unwrap_or_default(),
        },
    })
}

/// Replaces the account's settings.
pub async fn save_settings(
    conn: &mut PgConnection,
    account: &str,
    s: &Settings,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO settings (account_id, default_strategy, skill_fallback_seconds, max_queue_length, max_wait_seconds,
             overflow_action, overflow_team_id, leave_message_text, offline_policy, pooled_mode, presence_idle_seconds,
             default_handle_seconds, transfer_timeout_seconds, transfer_policy)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (account_id) DO UPDATE SET default_strategy = EXCLUDED.default_strategy,
             skill_fallback_seconds = EXCLUDED.skill_fallback_seconds, max_queue_length = EXCLUDED.max_queue_length,
             max_wait_seconds = EXCLUDED.max_wait_seconds, overflow_action = EXCLUDED.overflow_action,
             overflow_team_id = EXCLUDED.overflow_team_id, leave_message_text = EXCLUDED.leave_message_text,
             offline_policy = EXCLUDED.offline_policy, pooled_mode = EXCLUDED.pooled_mode,
             presence_idle_seconds = EXCLUDED.presence_idle_seconds, default_handle_seconds = EXCLUDED.default_handle_seconds,
             transfer_timeout_seconds = EXCLUDED.transfer_timeout_seconds,
             transfer_policy = EXCLUDED.transfer_policy, updated_at = now()",
    )
    .bind(account)
    .bind(s.default_strategy.storage_name())
    .bind(s.skill_fallback_seconds)
    .bind(s.max_queue_length)
    .bind(s.max_wait_seconds)
    .bind(s.overflow_action.storage_name())
    .bind(s.overflow_team_id)
    .bind(&s.leave_message_text)
    .bind(s.offline_policy.storage_name())
    .bind(s.pooled_mode)
    .bind(s.presence_idle_seconds)
    .bind(s.default_handle_seconds)
    .bind(s.transfer_timeout_seconds)
    .bind(Json(&s.transfer_policy))
    .execute(conn)
    .await?;
    Ok(())
}

/// A stored rule with its display fields.
#[derive(Debug, Clone)]
pub struct RuleRow {
    pub rule: Rule,
    pub name: String,
    pub position: i32,
}

/// Inserts a rule.
pub async fn insert_rule(
    conn: &mut PgConnection,
    account: &str,
    r: &RuleRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO routing_rules (id, account_id, name, position, condition, target_team_id, required_skills, priority_class, strategy)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(r.rule.id)
    .bind(account)
    .bind(&r.name)
    .bind(r.position)
    .bind(Json(&r.rule.condition))
    .bind(r.rule.target_team_id)
    .bind(&r.rule.required_skills)
    .bind(class_rank(r.rule.priority_class))
    .bind(r.rule.strategy.storage_name())
    .execute(conn)
    .await?;
    Ok(())
}

/// The account's rules in evaluation order.
pub async fn rules(conn: &mut PgConnection, account: &str) -> Result<Vec<RuleRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, name, position, condition, target_team_id, required_skills, priority_class, strategy
         FROM routing_rules WHERE account_id = $1 ORDER BY position, created_at, id",
    )
    .bind(account)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let condition: Json<Condition> = r.get("condition");
            let class: i32 = r.get("priority_class");
            let strategy: String = r.get("strategy");
            RuleRow {
                name: r.get("name"),
                position: r.get("position"),
                rule: Rule {
                    id: r.get("id"),
                    condition: condition.0,
                    target_team_id: r.get("target_team_id"),
                    required_skills: r.get("required_skills"),
                    priority_class: if class == 0 {
                        PriorityClass::Unspecified
                    } else {
                        class_from_rank(class)
                    },
                    strategy: if strategy == "unspecified" {
                        Strategy::Unspecified
                    } else {
                        Strategy::from_storage(&strategy)
                    },
                },
            }
        })
        .collect())
}

/// Deletes a rule; true when it existed.
pub async fn delete_rule(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM routing_rules WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(id)
            .execute(conn)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Stored business hours of a team or inbox.
#[derive(Debug, Clone)]
pub struct HoursRow {
    pub spec: HoursSpec,
    pub out_of_office_message: String,
    pub policy: OutsideHoursPolicy,
}

/// Replaces the hours of `(scope, id)`.
pub async fn save_hours(
    conn: &mut PgConnection,
    account: &str,
    scope: &str,
    id: Uuid,
    h: &HoursRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO business_hours (account_id, scope, scope_id, spec, out_of_office_message, policy) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (account_id, scope, scope_id) DO UPDATE SET spec = EXCLUDED.spec,
             out_of_office_message = EXCLUDED.out_of_office_message, policy = EXCLUDED.policy, updated_at = now()",
    )
    .bind(account)
    .bind(scope)
    .bind(id)
    .bind(Json(&h.spec))
    .bind(&h.out_of_office_message)
    .bind(h.policy.storage_name())
    .execute(conn)
    .await?;
    Ok(())
}

/// Hours of `(scope, id)`, if set.
pub async fn hours(
    conn: &mut PgConnection,
    account: &str,
    scope: &str,
    id: Uuid,
) -> Result<Option<HoursRow>, sqlx::Error> {
    let row = sqlx::query("SELECT spec, out_of_office_message, policy FROM business_hours WHERE account_id = $1 AND scope = $2 AND scope_id = $3")
        .bind(account)
        .bind(scope)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| {
        let spec: Json<HoursSpec> = r.get("spec");
        HoursRow {
            spec: spec.0,
            out_of_office_message: r.get("out_of_office_message"),
            policy: OutsideHoursPolicy::from_storage(r.get("policy")),
        }
    }))
}
