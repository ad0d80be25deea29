//! What the notification service keeps of other services' data, from their events:
//! the agent directory and who has which ticket.

use sqlx::PgConnection;

/// An agent as kept.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub team_ids: Vec<String>,
    pub presence: String,
}

/// Keeps an agent's directory entry (its presence is kept apart).
pub async fn upsert(
    conn: &mut PgConnection,
    account: &str,
    a: &AgentRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO agents (account_id, id, name, email, role, team_ids, presence)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (account_id, id) DO UPDATE
         SET name = $3, email = $4, role = $5, team_ids = $6",
    )
    .bind(account)
    .bind(&a.id)
    .bind(&a.name)
    .bind(&a.email)
    .bind(&a.role)
    .bind(&a.team_ids)
    .bind(&a.presence)
    .execute(conn)
    .await?;
    Ok(())
}

/// Keeps an agent's presence.
pub async fn set_presence(
    conn: &mut PgConnection,
    account: &str,
    id: &str,
    presence: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO agents (account_id, id, presence) VALUES ($1, $2, $3)
         ON CONFLICT (account_id, id) DO UPDATE SET presence = $3",
    )
    .bind(account)
    .bind(id)
    .bind(presence)
    .execute(conn)
    .await?;
    Ok(())
}

/// The account's agents.
pub async fn all(conn: &mut PgConnection, account: &str) -> Result<Vec<AgentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, email, role, team_ids, presence FROM agents WHERE account_id = $1",
    )
    .bind(account)
    .fetch_all(conn)
    .await
}

/// One agent.
pub async fn get(
    conn: &mut PgConnection,
    account: &str,
    id: &str,
) -> Result<Option<AgentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, email, role, team_ids, presence FROM agents
         WHERE account_id = $1 AND id = $2",
    )
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Keeps a ticket's number, subject and assignee.
pub async fn set_ticket(
    conn: &mut PgConnection,
    account: &str,
    id: &str,
    number: i64,
    subject: &str,
    assignee: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tickets (account_id, id, number, subject, assignee_id) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (account_id, id) DO UPDATE SET number = $3, subject = $4, assignee_id = $5",
    )
    .bind(account)
    .bind(id)
    .bind(number)
    .bind(subject)
    .bind(assignee)
    .execute(conn)
    .await?;
    Ok(())
}

/// A ticket's number, subject and assignee, if known.
pub async fn ticket(
    conn: &mut PgConnection,
    account: &str,
    id: &str,
) -> Result<Option<(i64, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT number, subject, assignee_id FROM tickets WHERE account_id = $1 AND id = $2",
    )
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await
}
