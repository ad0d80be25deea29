//! Lookups stay on their key however the tables grew since their statements were
//! planned.

use helpdesk_conversation::store::conversations::{self, Scope};
use uuid::Uuid;

use super::support::*;
use helpdesk_proto::conversation::v1::ReopenPolicy;

/// Index entries read from the `conversations` table's indexes so far (statistics
/// of the other connections flushed first).
async fn entries_read(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(idx_tup_read), 0)::bigint FROM pg_stat_user_indexes
         WHERE schemaname = current_schema() AND relname = 'conversations'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("index statistics")
}

/// A fresh install plans its statements on empty tables; a flash sale then fills them
/// within seconds. Looking a conversation up by id must still read one index entry,
/// not every conversation of the account (which made each lookup slower as the
/// account grew, until the table was next analysed).
#[tokio::test]
async fn a_lookup_planned_on_an_empty_table_reads_one_entry_once_it_has_grown() {
    let app = spawn_app().await;
    let mut conn = app.pool.acquire().await.expect("connection");
    // Plans made once, on the empty table, and kept (as a pooled connection keeps them).
    sqlx::query("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .expect("generic plans");
    let absent = Uuid::new_v4();
    let found = conversations::get(&mut conn, ACCOUNT, absent, Scope::Account, false)
        .await
        .expect("lookup");
    assert!(found.is_none());
    conversations::claim_routing_sequence(&mut conn, ACCOUNT, absent, 1)
        .await
        .expect("claim");

    // The account grows.
    let inbox = app.inbox("", ReopenPolicy::Unspecified).await;
    let mut ids = Vec::new();
    for i in 0..300 {
        let started = app.visitor_starts(&inbox, &format!("order {i}")).await;
        let id = started.conversation.expect("conversation").id;
        ids.push(id.parse::<Uuid>().expect("uuid"));
    }

    flush_statistics(&mut conn).await;
    let before = entries_read(&app).await;
    for (i, id) in ids.iter().take(20).enumerate() {
        let row = conversations::get(&mut conn, ACCOUNT, *id, Scope::Account, false)
            .await
            .expect("lookup");
        assert!(row.is_some(), "conversation {i} found");
        let claimed = conversations::claim_routing_sequence(&mut conn, ACCOUNT, *id, 1)
            .await
            .expect("claim");
        assert!(claimed.is_some(), "conversation {i} claimed");
    }
    flush_statistics(&mut conn).await;
    let read = entries_read(&app).await - before;
    // 40 lookups: one entry each. The service's own work of the moment (its other
    // connections report their reads up to a few seconds late) adds a few hundred at
    // most; scanning the account's 300 conversations per lookup reads about 12,000.
    assert!(
        read <= 2_000,
        "40 lookups by id read {read} index entries of conversations"
    );
    app.stop().await;
}

/// Makes this connection's statistics visible to the others.
async fn flush_statistics(conn: &mut sqlx::PgConnection) {
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&mut *conn)
        .await
        .expect("flush");
    // The flush happens as the backend goes idle after that statement.
    sqlx::query("SELECT 1")
        .execute(&mut *conn)
        .await
        .expect("idle");
}
