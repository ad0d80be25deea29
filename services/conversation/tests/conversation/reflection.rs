//! Server reflection answers both protocol versions, and lists what this port serves.

use tonic_reflection::pb::{v1, v1alpha};

use super::support::spawn_app;

const EXPECTED: [&str; 4] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "helpdesk.conversation.v1.ConversationService",
];

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_only_this_ports_services() {
    let app = spawn_app().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", app.port))
        .expect("url")
        .connect()
        .await
        .expect("connect");

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = v1::ServerReflectionRequest {
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
        ..Default::default()
    };
    let mut replies = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("v1 reflection")
        .into_inner();
    let reply = replies.message().await.expect("reply").expect("one reply");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        reply.message_response
    else {
        panic!("not a service list: {reply:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, EXPECTED);

    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1alpha::ServerReflectionRequest {
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
        ..Default::default()
    };
    let mut replies = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("v1alpha reflection")
        .into_inner();
    let reply = replies.message().await.expect("reply").expect("one reply");
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        reply.message_response
    else {
        panic!("not a service list: {reply:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, EXPECTED);
}
