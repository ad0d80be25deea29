//! Contacts: their name and email address, kept from the conversation service's events.

use sqlx::PgConnection;

/// A contact as the notification service knows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContactRow {
    pub name: String,
    pub email: String,
    /// The address was proven, not merely typed in by a visitor.
    pub verified: bool,
}

/// Keeps the contact's name and address.
pub async fn save(
    conn: &mut PgConnection,
    account: &str,
    id: &str,
    c: &ContactRow,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO contacts (account_id, id, name, email, verified) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (account_id, id) DO UPDATE SET name = EXCLUDED.name,
           email = EXCLUDED.email, verified = EXCLUDED.verified
         WHERE (contacts.name, contacts.email, contacts.verified)
           IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.email, EXCLUDED.verified)",
    )
    .bind(account)
    .bind(id)
    .bind(&c.name)
    .bind(&c.email)
    .bind(c.verified)
    .execute(conn)
    .await?;
    Ok(())
}

/// The contact, if known.
pub async fn get(
    conn: &mut PgConnection,
    account: &str,
    id: &str,
) -> sqlx::Result<Option<ContactRow>> {
    sqlx::query_as("SELECT name, email, verified FROM contacts WHERE account_id = $1 AND id = $2")
        .bind(account)
        .bind(id)
        .fetch_optional(conn)
        .await
}
