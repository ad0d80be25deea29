//! Commands the routing service answers for the other services.

use helpdesk_kit::auth::Caller;
use helpdesk_kit::command::Answer;
use helpdesk_kit::error::{Result, retry_conflicts};
use helpdesk_proto::routing::v1::run_routing_action_request::Action;
use helpdesk_proto::routing::v1::{RunRoutingActionRequest, RunRoutingActionResponse};

use crate::grpc::Api;

/// Answers `run_action`: an assignment, unassignment or transfer an automation rule
/// asks for, with the checks an admin's call gets, once per idempotency key.
pub struct RunAction {
    pub api: Api,
}

impl Answer<RunRoutingActionRequest> for RunAction {
    async fn answer(&self, req: RunRoutingActionRequest) -> Result<RunRoutingActionResponse> {
        let caller = helpdesk_kit::command::acting_caller(
            &req.account_id,
            &req.idempotency_key,
            req.origin.as_ref(),
        )?;
        let Some(action) = req.action.clone() else {
            return Err(helpdesk_kit::grpc::invalid_field("action", "required").into());
        };
        helpdesk_kit::command::once::<RunRoutingActionRequest, _, _>(
            &self.api.pool,
            &req.account_id,
            &req.idempotency_key,
            || retry_conflicts(|| act(&self.api, &caller, action.clone())),
        )
        .await
    }
}

async fn act(api: &Api, caller: &Caller, action: Action) -> Result<RunRoutingActionResponse> {
    match action {
        Action::Assign(a) => {
            api.assign_impl(caller, a).await?;
        }
        Action::Unassign(u) => api.unassign_for_rule_impl(caller, u).await?,
        Action::AssignTeam(t) => api.assign_team_for_rule_impl(caller, t).await?,
        Action::Transfer(t) => {
            api.request_transfer_impl(caller, t).await?;
        }
    }
    Ok(RunRoutingActionResponse {})
}
