//! The account's own statuses and custom field definitions.

use helpdesk_proto::ticketing::v1::{FieldDefinition, FieldType, StatusCategory};
use sqlx::PgConnection;

use crate::domain::StorageName;
use crate::domain::statuses::{StatusDef, built_in};

/// The account's statuses: the built-in ones, then its own in creation order.
pub async fn statuses(
    conn: &mut PgConnection,
    account: &str,
) -> Result<Vec<StatusDef>, sqlx::Error> {
    let own: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT key, category, label, external_label FROM statuses
         WHERE account_id = $1 ORDER BY created_at, key",
    )
    .bind(account)
    .fetch_all(conn)
    .await?;
    let mut all = built_in();
    all.extend(
        own.into_iter()
            .map(|(key, category, label, external_label)| StatusDef {
                key,
                category: StatusCategory::from_storage(&category),
                label,
                external_label,
                built_in: false,
            }),
    );
    Ok(all)
}

/// Adds a status.
pub async fn insert_status(
    conn: &mut PgConnection,
    account: &str,
    s: &StatusDef,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO statuses (account_id, key, category, label, external_label) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(account)
    .bind(&s.key)
    .bind(s.category.storage_name())
    .bind(&s.label)
    .bind(&s.external_label)
    .execute(conn)
    .await?;
    Ok(())
}

/// The account's custom field definitions, by key.
pub async fn fields(
    conn: &mut PgConnection,
    account: &str,
) -> Result<Vec<FieldDefinition>, sqlx::Error> {
    let rows: Vec<(String, String, String, Vec<String>)> = sqlx::query_as(
        "SELECT key, label, type, options FROM field_definitions WHERE account_id = $1 ORDER BY key",
    )
    .bind(account)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(key, label, kind, options)| FieldDefinition {
            key,
            label,
            r#type: FieldType::from_storage(&kind) as i32,
            options,
        })
        .collect())
}

/// Adds a field definition.
pub async fn insert_field(
    conn: &mut PgConnection,
    account: &str,
    d: &FieldDefinition,
) -> Result<(), sqlx::Error> {
    let kind = FieldType::try_from(d.r#type).unwrap_or_default();
    sqlx::query(
        "INSERT INTO field_definitions (account_id, key, label, type, options) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(account)
    .bind(&d.key)
    .bind(d.label.trim())
    .bind(kind.storage_name())
    .bind(&d.options)
    .execute(conn)
    .await?;
    Ok(())
}
