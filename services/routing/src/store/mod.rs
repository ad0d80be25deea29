//! SQL for the routing schema; functions take a connection so callers compose them
//! in one transaction with the outbox writes. Every query is scoped by account.

pub mod config;
pub mod directory;
pub mod state;

/// Takes the account's routing lock for the rest of the transaction: queue and
/// assignment changes of one account never interleave, whichever replica makes them.
pub async fn lock_account(conn: &mut sqlx::PgConnection, account: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('routing.account:' || $1, 0))")
        .bind(account)
        .execute(conn)
        .await?;
    Ok(())
}
