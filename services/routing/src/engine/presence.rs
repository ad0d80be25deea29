//! Agents' presence: going online makes their room available to the queue; going offline
//! requeues their open chats when the account says so.

use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::Origin;
use helpdesk_kit::outbox;
use helpdesk_proto::routing::v1::{
    AgentPresenceChanged, ConversationUnassigned, OfflinePolicy, Presence, UnassignReason,
};
use sqlx::PgConnection;

use super::account::Account;
use super::{offers, queue};
use crate::store::{directory, state};

/// Timer: an agent's workbench went quiet.
pub const IDLE_TIMER: &str = "routing.presence_idle";

/// Sets an agent's presence; offline requeues the agent's open chats when the account
/// says so. Returns the previous presence. Waiting chats are not assigned here: the
/// caller has them dispatched after its commit (`Dispatcher`), so that going online
/// answers at once however long the queue is.
pub async fn set_presence(
    conn: &mut PgConnection,
    origin: &Origin,
    agent_id: &str,
    presence: Presence,
) -> Result<Presence> {
    if presence == Presence::Online {
        return come_online(conn, origin, agent_id).await;
    }
    let mut account = Account::lock(conn, &origin.account).await?;
    let before = directory::set_presence(conn, &account.id, agent_id, presence)
        .await?
        .ok_or(Error::NotFound("agent"))?;
    if before == presence {
        return Ok(before);
    }
    account.presence_changed(conn, agent_id, presence).await?;
    offers::reject_offered_to(conn, origin, &account, agent_id).await?;
    let event = AgentPresenceChanged {
        agent_id: agent_id.to_string(),
        from: before as i32,
        to: presence as i32,
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    if presence == Presence::Offline && account.settings.offline_policy == OfflinePolicy::Requeue {
        for a in state::assignments_of(conn, &account.id, agent_id).await? {
            state::release(conn, &account.id, a.conversation_id).await?;
            account.freed(&a);
            let reason = "the conversation went back to the queue";
            offers::cancel_for(conn, origin, a.conversation_id, reason).await?;
            let event = ConversationUnassigned {
                conversation_id: a.conversation_id.to_string(),
                agent_id: agent_id.to_string(),
                reason: UnassignReason::AgentOffline as i32,
                requeued: true,
                sequence: state::next_assignment_sequence(conn).await?,
                ..Default::default()
            };
            outbox::emit(conn, origin, event).await?;
            queue::requeue(conn, &mut account, &a).await?;
        }
    }
    Ok(before)
}

/// Going online takes nothing from anyone, so it needs no account lock: the agent's
/// row and its event. Its room is filled by the dispatch that follows, under the lock;
/// a hundred agents coming online at once do not queue behind each other.
async fn come_online(conn: &mut PgConnection, origin: &Origin, agent_id: &str) -> Result<Presence> {
    let before = directory::set_presence(conn, &origin.account, agent_id, Presence::Online)
        .await?
        .ok_or(Error::NotFound("agent"))?;
    if before != Presence::Online {
        let event = AgentPresenceChanged {
            agent_id: agent_id.to_string(),
            from: before as i32,
            to: Presence::Online as i32,
            ..Default::default()
        };
        outbox::emit(conn, origin, event).await?;
    }
    Ok(before)
}
