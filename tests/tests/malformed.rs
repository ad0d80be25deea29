//! Every RPC of every service, fed malformed requests built from the services' own
//! descriptors (empty, NUL and non-UTF-8 strings, wildcards and dots in ids, huge and
//! negative numbers, unknown enum values, extreme timestamps, oversized text): no
//! answer is INTERNAL or UNKNOWN, and the services stay healthy. A service added to
//! the platform (and to `Platform`) is covered without writing anything here.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Buf, BufMut};
use helpdesk_tests::platform::{Platform, authed};
use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

/// Passes request and response bytes through untouched.
#[derive(Debug, Clone, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// One kind of bad value for every field of a request.
#[derive(Debug, Clone, Copy)]
enum Flavor {
    Nul,
    NotUtf8,
    Wildcards,
    Huge,
    Negative,
}

const FLAVORS: [Flavor; 5] = [
    Flavor::Nul,
    Flavor::NotUtf8,
    Flavor::Wildcards,
    Flavor::Huge,
    Flavor::Negative,
];

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn key(out: &mut Vec<u8>, number: i32, wire: u64) {
    varint(out, ((number as u64) << 3) | wire);
}

fn bytes_field(out: &mut Vec<u8>, number: i32, data: &[u8]) {
    key(out, number, 2);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// A message of type `name` whose every field carries `flavor`'s bad value.
fn encode(
    types: &HashMap<String, DescriptorProto>,
    name: &str,
    flavor: Flavor,
    depth: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(message) = types.get(name) else {
        return out;
    };
    for field in &message.field {
        let number = field.number();
        match field.r#type() {
            Type::String => {
                let text: Vec<u8> = match flavor {
                    Flavor::Nul => b"id\0x".to_vec(),
                    Flavor::NotUtf8 => vec![0xff, 0xfe, 0x00],
                    Flavor::Wildcards => b"a.b.*.>".to_vec(),
                    Flavor::Huge => vec![b'x'; 100_000],
                    Flavor::Negative => b"-1".to_vec(),
                };
                bytes_field(&mut out, number, &text);
            }
            Type::Bytes => bytes_field(&mut out, number, &[0xff; 64]),
            Type::Bool => {
                key(&mut out, number, 0);
                varint(&mut out, 1);
            }
            Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 | Type::Enum => {
                let value: i64 = match flavor {
                    Flavor::Huge | Flavor::Wildcards => i64::MAX,
                    Flavor::Negative | Flavor::Nul => -1,
                    Flavor::NotUtf8 => 999,
                };
                key(&mut out, number, 0);
                varint(&mut out, value as u64);
            }
            Type::Sint32 | Type::Sint64 => {
                key(&mut out, number, 0);
                varint(&mut out, u64::MAX);
            }
            Type::Double | Type::Fixed64 | Type::Sfixed64 => {
                key(&mut out, number, 1);
                out.extend_from_slice(&f64::MAX.to_le_bytes());
            }
            Type::Float | Type::Fixed32 | Type::Sfixed32 => {
                key(&mut out, number, 5);
                out.extend_from_slice(&f32::MAX.to_le_bytes());
            }
            Type::Message if depth < 3 => {
                let inner = encode(types, field.type_name(), flavor, depth + 1);
                let copies = if field.label() == Label::Repeated {
                    3
                } else {
                    1
                };
                for _ in 0..copies {
                    bytes_field(&mut out, number, &inner);
                }
            }
            Type::Message | Type::Group => {}
        }
    }
    out
}

/// Every message type of the descriptor set by its `.package.Name`.
fn message_types(set: &FileDescriptorSet) -> HashMap<String, DescriptorProto> {
    fn add(out: &mut HashMap<String, DescriptorProto>, prefix: &str, m: &DescriptorProto) {
        let name = format!("{prefix}.{}", m.name());
        for nested in &m.nested_type {
            add(out, &name, nested);
        }
        out.insert(name, m.clone());
    }
    let mut out = HashMap::new();
    for file in &set.file {
        for m in &file.message_type {
            add(&mut out, &format!(".{}", file.package()), m);
        }
    }
    out
}

#[tokio::test]
async fn every_rpc_answers_malformed_input_without_internal_errors() {
    let p = Platform::start(1).await;
    let ports: HashMap<&str, u16> = [
        (
            "helpdesk.conversation.v1.ConversationService",
            p.conversation.port,
        ),
        ("helpdesk.routing.v1.RoutingService", p.routers[0].port),
        (
            "helpdesk.ticketing.v1.TicketingService",
            p.ticketing[0].port,
        ),
        (
            "helpdesk.notification.v1.NotificationService",
            p.notification.port,
        ),
        (
            "helpdesk.automation.v1.AutomationService",
            p.automation.port,
        ),
    ]
    .into();
    let set = FileDescriptorSet::decode(helpdesk_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    let types = message_types(&set);
    let admin = p.admin();
    let mut failures = Vec::new();
    let mut calls = 0;
    for file in &set.file {
        for service in &file.service {
            let full = format!("{}.{}", file.package(), service.name());
            let port = *ports
                .get(full.as_str())
                .unwrap_or_else(|| panic!("{full} is not started by Platform"));
            let channel =
                tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
                    .expect("url")
                    .connect()
                    .await
                    .expect("connect");
            for method in &service.method {
                let path: http::uri::PathAndQuery =
                    format!("/{full}/{}", method.name()).parse().expect("path");
                let mut bodies = vec![Vec::new()];
                bodies.extend(
                    FLAVORS
                        .iter()
                        .map(|f| encode(&types, method.input_type(), *f, 0)),
                );
                for (i, body) in bodies.into_iter().enumerate() {
                    calls += 1;
                    let mut grpc = tonic::client::Grpc::new(channel.clone());
                    grpc.ready().await.expect("ready");
                    let request = authed(body, &admin);
                    let code = if method.server_streaming() {
                        let call = grpc.server_streaming(request, path.clone(), Raw);
                        match tokio::time::timeout(Duration::from_secs(2), async {
                            let mut stream = call.await?.into_inner();
                            stream.message().await
                        })
                        .await
                        {
                            Ok(Ok(_)) | Err(_) => Code::Ok,
                            Ok(Err(status)) => status.code(),
                        }
                    } else {
                        match grpc.unary(request, path.clone(), Raw).await {
                            Ok(_) => Code::Ok,
                            Err(status) => status.code(),
                        }
                    };
                    if matches!(code, Code::Internal | Code::Unknown) {
                        let flavor = if i == 0 {
                            "empty".to_string()
                        } else {
                            format!("{:?}", FLAVORS[i - 1])
                        };
                        failures.push(format!("{full}/{} {flavor}: {code:?}", method.name()));
                    }
                }
            }
        }
    }
    assert!(calls > 100, "every method was called ({calls} calls)");
    assert!(
        failures.is_empty(),
        "INTERNAL or UNKNOWN answers:\n{}",
        failures.join("\n")
    );
    // Still healthy.
    for port in ports.values() {
        let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .expect("url")
            .connect()
            .await
            .expect("the service still accepts connections");
        let health = tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .expect("health")
            .into_inner();
        assert_eq!(
            health.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }
}
