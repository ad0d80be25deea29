//! The [`Command`] trait: a request one service sends another over NATS and waits
//! for (`<root>.cmd.<service>.<name>`), with the response it gets.

/// A command's request message: who answers it, its name, and its response.
pub trait Command: prost::Message + prost::Name + Default + Clone + Send + Sync + 'static {
    /// What the answering service sends back.
    type Response: prost::Message + prost::Name + Default + Send + Sync + 'static;
    /// The service that answers (the subject's `<service>` token).
    const SERVICE: &'static str;
    /// The command's name (the subject's last token).
    const COMMAND: &'static str;
}

macro_rules! commands {
    ($($request:path => $response:path, $service:literal, $name:literal;)+) => {
        $(
            impl Command for $request {
                type Response = $response;
                const SERVICE: &'static str = $service;
                const COMMAND: &'static str = $name;
            }
        )+
    };
}

commands! {
    crate::conversation::v1::ExportConversationRequest =>
        crate::conversation::v1::ExportConversationResponse, "conversation", "export_conversation";
    crate::notification::v1::SendWebhookRequest =>
        crate::notification::v1::SendWebhookResponse, "notification", "send_webhook";
    crate::notification::v1::SendEmailRequest =>
        crate::notification::v1::SendEmailResponse, "notification", "send_email";
    crate::conversation::v1::RunConversationActionRequest =>
        crate::conversation::v1::RunConversationActionResponse, "conversation", "run_action";
    crate::routing::v1::RunRoutingActionRequest =>
        crate::routing::v1::RunRoutingActionResponse, "routing", "run_action";
    crate::ticketing::v1::RunTicketActionRequest =>
        crate::ticketing::v1::RunTicketActionResponse, "ticketing", "run_action";
}
