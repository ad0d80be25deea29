//! SQL for the routing schema; functions take a connection so callers compose them
//! in one transaction with the outbox writes. Every query is scoped by account.

pub mod config;
pub mod directory;
pub mod state;
pub mod transfers;

/// The longest any lock of a routing transaction is waited for.
pub const LOCK_TIMEOUT: &str = "3s";

/// Takes the account's routing lock for the rest of the transaction: queue and
/// assignment changes of one account never interleave, whichever replica makes them.
/// No lock of the transaction waits longer than [`LOCK_TIMEOUT`]: a call stuck behind
/// a busy account answers UNAVAILABLE (retry) instead of holding its connection.
pub async fn lock_account(conn: &mut sqlx::PgConnection, account: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "SELECT set_config('lock_timeout', '{LOCK_TIMEOUT}', true),
                pg_advisory_xact_lock(hashtextextended('routing.account:' || $1, 0))"
    ))
    .bind(account)
    .execute(conn)
    .await?;
    Ok(())
}
