//! Rules, kept in their order per account.

use chrono::{DateTime, Utc};
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::automation::v1::Rule;
use prost::Message as _;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct RuleRow {
    account_id: String,
    id: Uuid,
    position: i32,
    event: String,
    active: bool,
    body: Vec<u8>,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
}

impl RuleRow {
    fn into_proto(self) -> Rule {
        let mut rule = Rule::decode(self.body.as_slice()).unwrap_or_default();
        rule.id = self.id.to_string();
        rule.account_id = self.account_id;
        rule.position = self.position;
        rule.event = self.event;
        rule.active = self.active;
        rule.create_time = Some(to_timestamp(self.create_time));
        rule.update_time = Some(to_timestamp(self.update_time));
        rule
    }
}

/// Serialises changes to the order of one account's rules.
pub async fn lock_account(conn: &mut PgConnection, account: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('automation.rules:' || $1, 0))")
        .bind(account)
        .execute(conn)
        .await?;
    Ok(())
}

/// The account's rules in order (optionally of one event), after `after` position.
pub async fn list(
    conn: &mut PgConnection,
    account: &str,
    event: Option<&str>,
    after: i32,
    limit: i64,
) -> sqlx::Result<Vec<Rule>> {
    let rows: Vec<RuleRow> = sqlx::query_as(
        "SELECT * FROM rules WHERE account_id = $1 AND ($2::text IS NULL OR event = $2)
           AND position > $3 ORDER BY position, id LIMIT $4",
    )
    .bind(account)
    .bind(event)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(RuleRow::into_proto).collect())
}

/// Every active rule of the account, in order.
pub async fn active(conn: &mut PgConnection, account: &str) -> sqlx::Result<Vec<Rule>> {
    let rows: Vec<RuleRow> = sqlx::query_as(
        "SELECT * FROM rules WHERE account_id = $1 AND active ORDER BY position, id",
    )
    .bind(account)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(RuleRow::into_proto).collect())
}

pub async fn get(conn: &mut PgConnection, account: &str, id: Uuid) -> sqlx::Result<Option<Rule>> {
    let row: Option<RuleRow> =
        sqlx::query_as("SELECT * FROM rules WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(RuleRow::into_proto))
}

/// How many rules the account has.
pub async fn count(conn: &mut PgConnection, account: &str) -> sqlx::Result<i32> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM rules WHERE account_id = $1")
        .bind(account)
        .fetch_one(conn)
        .await?;
    Ok(i32::try_from(n).unwrap_or(i32::MAX))
}

/// Makes room at `position` (1-based): the rules from there on move down one.
pub async fn open_gap(conn: &mut PgConnection, account: &str, position: i32) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE rules SET position = position + 1 WHERE account_id = $1 AND position >= $2",
    )
    .bind(account)
    .bind(position)
    .execute(conn)
    .await?;
    Ok(())
}

/// Closes the gap a rule left at `position`.
pub async fn close_gap(conn: &mut PgConnection, account: &str, position: i32) -> sqlx::Result<()> {
    sqlx::query("UPDATE rules SET position = position - 1 WHERE account_id = $1 AND position > $2")
        .bind(account)
        .bind(position)
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores `rule` (its id, account and position set), new or replacing the old one.
pub async fn save(conn: &mut PgConnection, rule: &Rule) -> sqlx::Result<Rule> {
    let id: Uuid = rule.id.parse().unwrap_or_default();
    let body = Rule {
        id: String::new(),
        account_id: String::new(),
        create_time: None,
        update_time: None,
        ..rule.clone()
    }
    .encode_to_vec();
    let row: RuleRow = sqlx::query_as(
        "INSERT INTO rules (account_id, id, position, event, active, body)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (account_id, id) DO UPDATE SET position = EXCLUDED.position,
           event = EXCLUDED.event, active = EXCLUDED.active, body = EXCLUDED.body,
           update_time = now()
         RETURNING *",
    )
    .bind(&rule.account_id)
    .bind(id)
    .bind(rule.position)
    .bind(&rule.event)
    .bind(rule.active)
    .bind(body)
    .fetch_one(conn)
    .await?;
    Ok(row.into_proto())
}

/// Removes a rule; its position, if it existed.
pub async fn delete(conn: &mut PgConnection, account: &str, id: Uuid) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar("DELETE FROM rules WHERE account_id = $1 AND id = $2 RETURNING position")
        .bind(account)
        .bind(id)
        .fetch_optional(conn)
        .await
}
