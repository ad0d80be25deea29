//! Who may transfer which chats, and to whom: the account's transfer policy applied
//! to the requester (their token's role and their teams in the directory).

use std::collections::HashSet;

use helpdesk_kit::auth::Role;
use helpdesk_kit::storage::StorageName;
use helpdesk_proto::routing::v1::{StaffRole, TransferPolicy};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::select::Candidate;

/// An account's transfer policy, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Roles besides admins that may request transfers.
    pub transfer_roles: Vec<String>,
    /// Agents may transfer outside their own teams.
    pub agents_across_teams: bool,
    /// Roles that may receive transfers.
    pub receiver_roles: Vec<String>,
    /// Agents may transfer to supervisors and admins.
    pub agents_to_supervisors: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            transfer_roles: vec!["agent".into(), "supervisor".into()],
            agents_across_teams: true,
            receiver_roles: vec!["agent".into(), "supervisor".into(), "admin".into()],
            agents_to_supervisors: false,
        }
    }
}

fn names(roles: &[i32]) -> Vec<String> {
    let mut names: Vec<String> = roles
        .iter()
        .map(|r| StaffRole::try_from(*r).unwrap_or_default())
        .filter(|r| *r != StaffRole::Unspecified)
        .map(|r| r.storage_name().to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn roles(names: &[String]) -> Vec<i32> {
    names
        .iter()
        .map(|n| StaffRole::from_storage(n) as i32)
        .collect()
}

impl Policy {
    /// From the API (roles already checked to be known).
    pub fn from_proto(p: &TransferPolicy) -> Self {
        Self {
            transfer_roles: names(&p.transfer_roles),
            agents_across_teams: p.agents_across_teams,
            receiver_roles: names(&p.receiver_roles),
            agents_to_supervisors: p.agents_to_supervisors,
        }
    }

    /// As the API shows it.
    pub fn to_proto(&self) -> TransferPolicy {
        TransferPolicy {
            transfer_roles: roles(&self.transfer_roles),
            agents_across_teams: self.agents_across_teams,
            receiver_roles: roles(&self.receiver_roles),
            agents_to_supervisors: self.agents_to_supervisors,
        }
    }
}

/// What the policy allows one requester.
#[derive(Debug, Clone)]
pub struct Permit<'a> {
    pub policy: &'a Policy,
    /// The requester's id (token subject).
    pub id: &'a str,
    /// The requester's token role.
    pub role: Role,
    /// The requester's teams in the directory (none when not an agent there).
    pub teams: HashSet<Uuid>,
}

/// A chat as far as permissions go: its agent, the team it was assigned in, and the
/// agent's teams.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    pub agent_id: &'a str,
    pub team_id: Option<Uuid>,
    pub agent_teams: &'a HashSet<Uuid>,
}

/// A possible receiver: its directory role and teams.
#[derive(Debug, Clone, Copy)]
pub struct Receiver<'a> {
    pub role: StaffRole,
    pub teams: &'a HashSet<Uuid>,
}

impl<'a> From<&'a Candidate> for Receiver<'a> {
    fn from(c: &'a Candidate) -> Self {
        Self {
            role: c.role,
            teams: &c.teams,
        }
    }
}

impl Permit<'_> {
    /// Admins and integrations act for the whole account.
    fn unrestricted(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Integration)
    }

    /// Why the requester may not transfer at all; `None` when they may.
    pub fn refuses_transfer(&self) -> Option<String> {
        if self.unrestricted() {
            return None;
        }
        let allowed = self
            .policy
            .transfer_roles
            .iter()
            .any(|r| r == &self.role.to_string());
        (!allowed).then(|| format!("the account does not let {}s transfer", self.role))
    }

    /// Whether the requester may move `held`: their own chat, any chat for admins,
    /// and for supervisors the chats of their teams.
    pub fn may_move(&self, held: Held<'_>) -> bool {
        if self.unrestricted() || held.agent_id == self.id {
            return true;
        }
        self.role == Role::Supervisor
            && (held.team_id.is_some_and(|t| self.teams.contains(&t))
                || !held.agent_teams.is_disjoint(&self.teams))
    }

    /// Why the requester may not send a transfer to the team; `None` when they may.
    pub fn refuses_team(&self, team: Uuid) -> Option<String> {
        (self.role == Role::Agent
            && !self.policy.agents_across_teams
            && !self.teams.contains(&team))
        .then(|| "agents may transfer only within their own teams".to_string())
    }

    /// Why `r` may not receive a transfer from the requester; `None` when it may.
    pub fn refuses_receiver(&self, r: Receiver<'_>) -> Option<String> {
        let role = r.role.storage_name();
        if !self.policy.receiver_roles.iter().any(|x| x == role) {
            return Some(format!(
                "the account does not let {role}s receive transfers"
            ));
        }
        if self.role != Role::Agent {
            return None;
        }
        if r.role != StaffRole::Agent && !self.policy.agents_to_supervisors {
            return Some(format!(
                "agents may not transfer to a {role} in this account"
            ));
        }
        if !self.policy.agents_across_teams && r.teams.is_disjoint(&self.teams) {
            return Some("agents may transfer only within their own teams".to_string());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permit<'a>(policy: &'a Policy, role: Role, teams: &[Uuid]) -> Permit<'a> {
        Permit {
            policy,
            id: "me",
            role,
            teams: teams.iter().copied().collect(),
        }
    }

    #[test]
    fn agents_need_permission_for_supervisors_and_other_teams() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut policy = Policy::default();
        let theirs: HashSet<Uuid> = [b].into();
        let supervisor = Receiver {
            role: StaffRole::Supervisor,
            teams: &theirs,
        };
        let agent = Receiver {
            role: StaffRole::Agent,
            teams: &theirs,
        };
        let p = permit(&policy, Role::Agent, &[a]);
        assert!(p.refuses_receiver(supervisor).is_some());
        assert!(p.refuses_receiver(agent).is_none());
        assert!(p.refuses_team(b).is_none());
        let boss = permit(&policy, Role::Supervisor, &[a]);
        assert!(boss.refuses_receiver(supervisor).is_none());

        policy.agents_across_teams = false;
        policy.agents_to_supervisors = true;
        let p = permit(&policy, Role::Agent, &[a]);
        assert!(p.refuses_receiver(agent).is_some());
        assert!(p.refuses_team(b).is_some());
        assert!(p.refuses_team(a).is_none());
        let ours: HashSet<Uuid> = [a].into();
        let colleague = Receiver {
            role: StaffRole::Supervisor,
            teams: &ours,
        };
        assert!(p.refuses_receiver(colleague).is_none());
    }

    #[test]
    fn supervisors_move_their_teams_chats_only() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let policy = Policy::default();
        let none = HashSet::new();
        let in_b: HashSet<Uuid> = [b].into();
        let boss = permit(&policy, Role::Supervisor, &[a]);
        let chat = |team, agent_teams| Held {
            agent_id: "li",
            team_id: team,
            agent_teams,
        };
        assert!(boss.may_move(chat(Some(a), &none)));
        assert!(!boss.may_move(chat(Some(b), &in_b)));
        assert!(!boss.may_move(chat(None, &none)));
        let in_a: HashSet<Uuid> = [a].into();
        assert!(boss.may_move(chat(None, &in_a)));
        assert!(!permit(&policy, Role::Agent, &[a]).may_move(chat(Some(a), &in_a)));
        assert!(permit(&policy, Role::Admin, &[]).may_move(chat(Some(b), &in_b)));
    }

    #[test]
    fn roles_not_listed_may_not_transfer_or_receive() {
        let policy = Policy {
            transfer_roles: vec!["supervisor".into()],
            receiver_roles: vec!["agent".into()],
            ..Policy::default()
        };
        assert!(
            permit(&policy, Role::Agent, &[])
                .refuses_transfer()
                .is_some()
        );
        assert!(
            permit(&policy, Role::Supervisor, &[])
                .refuses_transfer()
                .is_none()
        );
        assert!(
            permit(&policy, Role::Admin, &[])
                .refuses_transfer()
                .is_none()
        );
        let none = HashSet::new();
        let admin = Receiver {
            role: StaffRole::Admin,
            teams: &none,
        };
        assert!(
            permit(&policy, Role::Admin, &[])
                .refuses_receiver(admin)
                .is_some()
        );
    }
}
