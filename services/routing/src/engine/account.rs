//! The per-account context of an engine operation: read once, right after the
//! account lock, and kept current in memory while the operation assigns and frees.

use helpdesk_kit::error::Result;
use helpdesk_proto::routing::v1::Presence;
use sqlx::PgConnection;

use crate::domain::Settings;
use crate::domain::select::Candidate;
use crate::store::{config, directory, state};

/// What every step of an operation needs of the account. Valid only under the
/// account lock: nothing else changes the account's assignments meanwhile.
#[derive(Debug)]
pub(super) struct Account {
    /// The account id.
    pub id: String,
    pub settings: Settings,
    /// Online agents with their loads, in id order. Assignments update them
    /// (`Candidate::take`), as do [`Account::freed`] and [`Account::presence_changed`].
    pub agents: Vec<Candidate>,
}

impl Account {
    /// Reads the context. Call right after `store::lock_account`.
    pub async fn load(conn: &mut PgConnection, account: &str) -> Result<Self> {
        let settings = config::settings(conn, account).await?;
        let agents = online_agents(conn, account, None).await?;
        Ok(Self {
            id: account.to_string(),
            settings,
            agents,
        })
    }

    /// The context's own copy of an online agent.
    pub fn agent_mut(&mut self, id: &str) -> Option<&mut Candidate> {
        self.agents.iter_mut().find(|a| a.id == id)
    }

    /// An assignment ended: its agent has one chat less.
    pub fn freed(&mut self, a: &state::AssignmentRow) {
        if let Some(agent) = self.agent_mut(&a.agent_id) {
            agent.free(&a.channel);
        }
    }

    /// An agent's presence was just written: only online agents are candidates.
    pub async fn presence_changed(
        &mut self,
        conn: &mut PgConnection,
        agent_id: &str,
        presence: Presence,
    ) -> Result<()> {
        self.agents.retain(|a| a.id != agent_id);
        if presence == Presence::Online {
            for agent in online_agents(conn, &self.id, Some(agent_id)).await? {
                let at = self.agents.partition_point(|a| a.id < agent.id);
                self.agents.insert(at, agent);
            }
        }
        Ok(())
    }
}

/// Online agents of the account (or only `only_id`), as the dispatcher sees them.
async fn online_agents(
    conn: &mut PgConnection,
    account: &str,
    only_id: Option<&str>,
) -> Result<Vec<Candidate>> {
    Ok(directory::agent_views(conn, account, only_id, true, None)
        .await?
        .iter()
        .map(directory::AgentView::candidate)
        .collect())
}
