//! gRPC API: authentication and scoping here, one module per resource.

mod actions;
mod bot;
mod contacts;
pub(crate) mod conversations;
mod inboxes;
mod live;
mod messages;

use std::pin::Pin;

use futures::Stream;
use helpdesk_kit::auth::{Caller, Claims, JwtKeys};
use helpdesk_kit::bus::Bus;
use helpdesk_kit::error::retry_conflicts;
use helpdesk_kit::live::Hub;
use helpdesk_proto::conversation::v1::conversation_service_server::ConversationService;
use helpdesk_proto::conversation::v1::*;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::store::conversations::Scope;

/// The conversation API's shared state.
#[derive(Clone)]
pub struct Api {
    pub(crate) pool: PgPool,
    pub(crate) bus: Bus,
    pub(crate) keys: JwtKeys,
    pub(crate) visitor_token_ttl: chrono::Duration,
    pub(crate) live: Hub,
}

/// What a caller may see of the account's conversations.
pub(crate) trait Scoped {
    fn scope(&self) -> Scope;
}

impl Scoped for Caller {
    fn scope(&self) -> Scope {
        match self.contact {
            Some(contact) => Scope::Contact(contact),
            None => Scope::Account,
        }
    }
}

type SubscribeStream = Pin<Box<dyn Stream<Item = Result<SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ConversationService for Api {
    async fn create_inbox(
        &self,
        r: Request<CreateInboxRequest>,
    ) -> Result<Response<Inbox>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.create_inbox_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn get_widget_settings(
        &self,
        r: Request<GetWidgetSettingsRequest>,
    ) -> Result<Response<WidgetSettings>, Status> {
        // Public: the inbox key is on every page that embeds the widget.
        Ok(Response::new(
            self.get_widget_settings_impl(r.into_inner()).await?,
        ))
    }

    async fn get_inbox(&self, r: Request<GetInboxRequest>) -> Result<Response<Inbox>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.get_inbox_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn list_inboxes(
        &self,
        r: Request<ListInboxesRequest>,
    ) -> Result<Response<ListInboxesResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.list_inboxes_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn update_inbox(
        &self,
        r: Request<UpdateInboxRequest>,
    ) -> Result<Response<Inbox>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.update_inbox_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn upsert_contact(
        &self,
        r: Request<UpsertContactRequest>,
    ) -> Result<Response<UpsertContactResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.upsert_contact_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn get_contact(
        &self,
        r: Request<GetContactRequest>,
    ) -> Result<Response<Contact>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.get_contact_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn update_device_info(
        &self,
        r: Request<UpdateDeviceInfoRequest>,
    ) -> Result<Response<Contact>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.update_device_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn start_conversation(
        &self,
        r: Request<StartConversationRequest>,
    ) -> Result<Response<StartConversationResponse>, Status> {
        // The one call that may come without a token (a visitor with an inbox key).
        let claims = r.extensions().get::<Claims>().cloned();
        Ok(Response::new(
            retry_conflicts(|| self.start_conversation_impl(claims.clone(), r.get_ref().clone()))
                .await?,
        ))
    }

    async fn get_conversation(
        &self,
        r: Request<GetConversationRequest>,
    ) -> Result<Response<Conversation>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.get_conversation_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn list_conversations(
        &self,
        r: Request<ListConversationsRequest>,
    ) -> Result<Response<ListConversationsResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.list_conversations_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn update_conversation(
        &self,
        r: Request<UpdateConversationRequest>,
    ) -> Result<Response<Conversation>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.update_conversation_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn set_status(
        &self,
        r: Request<SetStatusRequest>,
    ) -> Result<Response<Conversation>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.set_status_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn rate_conversation(
        &self,
        r: Request<RateConversationRequest>,
    ) -> Result<Response<Conversation>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.rate_conversation_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn send_message(
        &self,
        r: Request<SendMessageRequest>,
    ) -> Result<Response<Message>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.send_message_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn list_messages(
        &self,
        r: Request<ListMessagesRequest>,
    ) -> Result<Response<ListMessagesResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.list_messages_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn send_typing(
        &self,
        r: Request<SendTypingRequest>,
    ) -> Result<Response<SendTypingResponse>, Status> {
        let c = Caller::of(&r)?;
        self.send_typing_impl(&c, r.into_inner()).await?;
        Ok(Response::new(SendTypingResponse {}))
    }

    async fn handoff_to_human(
        &self,
        r: Request<HandoffToHumanRequest>,
    ) -> Result<Response<Conversation>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            retry_conflicts(|| self.handoff_to_human_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    type SubscribeStream = SubscribeStream;

    async fn subscribe(
        &self,
        r: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(self.subscribe_impl(c, r.into_inner()).await?))
    }
}
