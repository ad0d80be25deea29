//! Macros.

use chrono::{DateTime, Utc};
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::automation::v1::Macro;
use prost::Message as _;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct MacroRow {
    account_id: String,
    id: Uuid,
    name: String,
    body: Vec<u8>,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
}

impl MacroRow {
    fn into_proto(self) -> Macro {
        let mut m = Macro::decode(self.body.as_slice()).unwrap_or_default();
        m.id = self.id.to_string();
        m.account_id = self.account_id;
        m.name = self.name;
        m.create_time = Some(to_timestamp(self.create_time));
        m.update_time = Some(to_timestamp(self.update_time));
        m
    }
}

/// Stores `m` (id and account set), new or replacing. A name the account already
/// uses is a unique violation.
pub async fn save(conn: &mut PgConnection, m: &Macro) -> sqlx::Result<Macro> {
    let body = Macro {
        id: String::new(),
        account_id: String::new(),
        name: String::new(),
        create_time: None,
        update_time: None,
        ..m.clone()
    }
    .encode_to_vec();
    let row: MacroRow = sqlx::query_as(
        "INSERT INTO macros (account_id, id, name, body) VALUES ($1, $2, $3, $4)
         ON CONFLICT (account_id, id) DO UPDATE SET name = EXCLUDED.name,
           body = EXCLUDED.body, update_time = now()
         RETURNING *",
    )
    .bind(&m.account_id)
    .bind(m.id.parse::<Uuid>().unwrap_or_default())
    .bind(&m.name)
    .bind(body)
    .fetch_one(conn)
    .await?;
    Ok(row.into_proto())
}

pub async fn get(conn: &mut PgConnection, account: &str, id: Uuid) -> sqlx::Result<Option<Macro>> {
    let row: Option<MacroRow> =
        sqlx::query_as("SELECT * FROM macros WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(MacroRow::into_proto))
}

/// The account's macros by name, after `after` (a name, lower-cased).
pub async fn list(
    conn: &mut PgConnection,
    account: &str,
    after: &str,
    limit: i64,
) -> sqlx::Result<Vec<Macro>> {
    let rows: Vec<MacroRow> = sqlx::query_as(
        "SELECT * FROM macros WHERE account_id = $1 AND lower(name) > $2
         ORDER BY lower(name) LIMIT $3",
    )
    .bind(account)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(MacroRow::into_proto).collect())
}

pub async fn delete(conn: &mut PgConnection, account: &str, id: Uuid) -> sqlx::Result<bool> {
    let r = sqlx::query("DELETE FROM macros WHERE account_id = $1 AND id = $2")
        .bind(account)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() > 0)
}
