//! gRPC API: authentication here, one module per area.

mod config;
mod directory;
mod queue;
mod transfers;

use std::pin::Pin;

use futures::Stream;
use helpdesk_kit::CancellationToken;
use helpdesk_kit::auth::Caller;
use helpdesk_kit::error::retry_conflicts;
use helpdesk_kit::live::Hub;
use helpdesk_proto::routing::v1::routing_service_server::RoutingService;
use helpdesk_proto::routing::v1::*;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

/// How long a call waits for something another service announced a moment ago (an
/// inbox, a conversation) to reach routing through its event, before it counts as
/// unknown.
const ANNOUNCED_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The routing API's shared state.
#[derive(Clone)]
pub struct Api {
    pub(crate) pool: PgPool,
    pub(crate) shutdown: CancellationToken,
    pub(crate) live: Hub,
    /// Queue statistics computed at most once a second per account and team, shared
    /// by every `WatchQueueStats` stream.
    pub(crate) stats: std::sync::Arc<queue::SharedStats>,
    /// Waiting chats' positions computed at most once a second per account, shared by
    /// every `WatchQueuePosition` stream.
    pub(crate) positions: std::sync::Arc<queue::SharedPositions>,
    /// Assigns waiting chats in the background after a presence change.
    pub(crate) dispatcher: crate::dispatcher::Dispatcher,
    /// Turns at accounts, taken before a connection by calls that lock an account.
    pub(crate) gates: crate::gates::Gates,
}

type PresenceStream = Pin<Box<dyn Stream<Item = Result<PresenceUpdate, Status>> + Send>>;
type PositionStream = Pin<Box<dyn Stream<Item = Result<QueuePosition, Status>> + Send>>;
type StatsStream = Pin<Box<dyn Stream<Item = Result<QueueStats, Status>> + Send>>;
type BoardStream = Pin<Box<dyn Stream<Item = Result<AgentsBoard, Status>> + Send>>;
type TransferStream = Pin<Box<dyn Stream<Item = Result<Transfer, Status>> + Send>>;

#[tonic::async_trait]
impl RoutingService for Api {
    async fn create_team(&self, r: Request<CreateTeamRequest>) -> Result<Response<Team>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.create_team_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn create_agent(
        &self,
        r: Request<CreateAgentRequest>,
    ) -> Result<Response<Agent>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.create_agent_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn get_agent(&self, r: Request<GetAgentRequest>) -> Result<Response<Agent>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.get_agent_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn list_agents(
        &self,
        r: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.list_agents_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn update_agent(
        &self,
        r: Request<UpdateAgentRequest>,
    ) -> Result<Response<Agent>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.update_agent_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn set_presence(
        &self,
        r: Request<SetPresenceRequest>,
    ) -> Result<Response<Agent>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.set_presence_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn set_business_hours(
        &self,
        r: Request<SetBusinessHoursRequest>,
    ) -> Result<Response<BusinessHours>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.set_hours_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn get_business_hours(
        &self,
        r: Request<GetBusinessHoursRequest>,
    ) -> Result<Response<BusinessHours>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.get_hours_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn create_routing_rule(
        &self,
        r: Request<CreateRoutingRuleRequest>,
    ) -> Result<Response<RoutingRule>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.create_rule_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn update_settings(
        &self,
        r: Request<UpdateSettingsRequest>,
    ) -> Result<Response<RoutingSettings>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.update_settings_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn assign_conversation(
        &self,
        r: Request<AssignConversationRequest>,
    ) -> Result<Response<Assignment>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.assign_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn pick_from_queue(
        &self,
        r: Request<PickFromQueueRequest>,
    ) -> Result<Response<Assignment>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.pick_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn list_queue(
        &self,
        r: Request<ListQueueRequest>,
    ) -> Result<Response<ListQueueResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.list_queue_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn get_queue_position(
        &self,
        r: Request<GetQueuePositionRequest>,
    ) -> Result<Response<QueuePosition>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.get_position_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn get_queue_stats(
        &self,
        r: Request<GetQueueStatsRequest>,
    ) -> Result<Response<QueueStats>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.get_stats_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn request_transfer(
        &self,
        r: Request<RequestTransferRequest>,
    ) -> Result<Response<Transfer>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.request_transfer_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn accept_transfer(
        &self,
        r: Request<AcceptTransferRequest>,
    ) -> Result<Response<Transfer>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.accept_transfer_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn reject_transfer(
        &self,
        r: Request<RejectTransferRequest>,
    ) -> Result<Response<Transfer>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.reject_transfer_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn cancel_transfer(
        &self,
        r: Request<CancelTransferRequest>,
    ) -> Result<Response<Transfer>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.cancel_transfer_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn leave_in_team_queue(
        &self,
        r: Request<LeaveInTeamQueueRequest>,
    ) -> Result<Response<LeaveInTeamQueueResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.leave_in_team_queue_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn recommend_transfer_targets(
        &self,
        r: Request<RecommendTransferTargetsRequest>,
    ) -> Result<Response<RecommendTransferTargetsResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.recommend_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn get_transfer_stats(
        &self,
        r: Request<GetTransferStatsRequest>,
    ) -> Result<Response<GetTransferStatsResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.transfer_stats_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn list_transfer_templates(
        &self,
        r: Request<ListTransferTemplatesRequest>,
    ) -> Result<Response<ListTransferTemplatesResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(self.list_templates_impl(&c).await?))
    }

    async fn create_transfer_template(
        &self,
        r: Request<CreateTransferTemplateRequest>,
    ) -> Result<Response<TransferTemplate>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.create_template_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn delete_transfer_template(
        &self,
        r: Request<DeleteTransferTemplateRequest>,
    ) -> Result<Response<DeleteTransferTemplateResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.delete_template_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn list_transfers(
        &self,
        r: Request<ListTransfersRequest>,
    ) -> Result<Response<ListTransfersResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.list_transfers_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn list_teams(
        &self,
        r: Request<ListTeamsRequest>,
    ) -> Result<Response<ListTeamsResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(self.list_teams_impl(&c).await?))
    }

    async fn heartbeat(&self, r: Request<HeartbeatRequest>) -> Result<Response<Agent>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.heartbeat_impl(&c)).await?,
        ))
    }

    async fn list_routing_rules(
        &self,
        r: Request<ListRoutingRulesRequest>,
    ) -> Result<Response<ListRoutingRulesResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(self.list_rules_impl(&c).await?))
    }

    async fn delete_routing_rule(
        &self,
        r: Request<DeleteRoutingRuleRequest>,
    ) -> Result<Response<DeleteRoutingRuleResponse>, Status> {
        let c = Caller::of(&r)?;
        retry_conflicts(|| self.delete_rule_impl(&c, r.get_ref().clone())).await?;
        Ok(Response::new(DeleteRoutingRuleResponse {}))
    }

    async fn get_settings(
        &self,
        r: Request<GetSettingsRequest>,
    ) -> Result<Response<RoutingSettings>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(self.get_settings_impl(&c).await?))
    }

    async fn unassign_conversation(
        &self,
        r: Request<UnassignConversationRequest>,
    ) -> Result<Response<UnassignConversationResponse>, Status> {
        let c = Caller::of(&r)?;
        retry_conflicts(|| self.unassign_impl(&c, r.get_ref().clone())).await?;
        Ok(Response::new(UnassignConversationResponse {}))
    }

    type WatchPresenceStream = PresenceStream;

    async fn watch_presence(
        &self,
        r: Request<WatchPresenceRequest>,
    ) -> Result<Response<Self::WatchPresenceStream>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(self.watch_presence_impl(c).await?))
    }

    type WatchAgentsStream = BoardStream;

    async fn watch_agents(
        &self,
        r: Request<WatchAgentsRequest>,
    ) -> Result<Response<Self::WatchAgentsStream>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.watch_agents_impl(c, r.into_inner()).await?,
        ))
    }

    type WatchQueuePositionStream = PositionStream;

    async fn watch_queue_position(
        &self,
        r: Request<GetQueuePositionRequest>,
    ) -> Result<Response<Self::WatchQueuePositionStream>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.watch_position_impl(c, r.into_inner()).await?,
        ))
    }

    type WatchTransfersStream = TransferStream;

    async fn watch_transfers(
        &self,
        r: Request<WatchTransfersRequest>,
    ) -> Result<Response<Self::WatchTransfersStream>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.watch_transfers_impl(c, r.into_inner()).await?,
        ))
    }

    type WatchQueueStatsStream = StatsStream;

    async fn watch_queue_stats(
        &self,
        r: Request<GetQueueStatsRequest>,
    ) -> Result<Response<Self::WatchQueueStatsStream>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.watch_stats_impl(c, r.into_inner()).await?,
        ))
    }
}
