//! Rules created, changed and deleted, in order, each change announced
//! (`automation.rules_changed`) so every replica drops its cached rules.

use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::Origin;
use helpdesk_kit::outbox;
use helpdesk_proto::automation::v1::{Rule, RulesChanged};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::store;

/// Most rules of one account.
pub const MAX_RULES: i32 = 5_000;

/// Stores a new (checked) rule at its position (0: last).
pub async fn create(conn: &mut PgConnection, origin: &Origin, mut rule: Rule) -> Result<Rule> {
    let account = origin.account.clone();
    store::rules::lock_account(conn, &account).await?;
    let count = store::rules::count(conn, &account).await?;
    if count >= MAX_RULES {
        return Err(Error::FailedPrecondition(format!(
            "an account has at most {MAX_RULES} rules"
        )));
    }
    let position = if rule.position == 0 || rule.position > count {
        count + 1
    } else {
        rule.position
    };
    store::rules::open_gap(conn, &account, position).await?;
    rule.id = Uuid::now_v7().to_string();
    rule.account_id = account;
    rule.position = position;
    let rule = store::rules::save(conn, &rule).await?;
    announce(conn, origin, &rule.id, Some(rule.clone())).await?;
    Ok(rule)
}

/// Replaces a rule with `next` (already merged and checked), moving it when its
/// position changed.
pub async fn update(
    conn: &mut PgConnection,
    origin: &Origin,
    id: Uuid,
    mut next: Rule,
) -> Result<Rule> {
    let account = origin.account.clone();
    store::rules::lock_account(conn, &account).await?;
    let current = store::rules::get(conn, &account, id)
        .await?
        .ok_or(Error::NotFound("rule"))?;
    if next.position != current.position {
        let count = store::rules::count(conn, &account).await?;
        let target = next.position.clamp(1, count);
        store::rules::close_gap(conn, &account, current.position).await?;
        store::rules::open_gap(conn, &account, target).await?;
        next.position = target;
    }
    next.id = current.id;
    next.account_id = account;
    let rule = store::rules::save(conn, &next).await?;
    announce(conn, origin, &rule.id, Some(rule.clone())).await?;
    Ok(rule)
}

/// Deletes a rule (its waiting delayed runs are dropped when due).
pub async fn delete(conn: &mut PgConnection, origin: &Origin, id: Uuid) -> Result<()> {
    let account = origin.account.clone();
    store::rules::lock_account(conn, &account).await?;
    let position = store::rules::delete(conn, &account, id)
        .await?
        .ok_or(Error::NotFound("rule"))?;
    store::rules::close_gap(conn, &account, position).await?;
    announce(conn, origin, &id.to_string(), None).await
}

async fn announce(
    conn: &mut PgConnection,
    origin: &Origin,
    id: &str,
    rule: Option<Rule>,
) -> Result<()> {
    let event = RulesChanged {
        rule_id: id.to_string(),
        rule,
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    Ok(())
}
