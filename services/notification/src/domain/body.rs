//! The JSON a receiver gets: `{"type", "timestamp", "data"}`, `data` being the event
//! in protobuf's canonical JSON mapping (lowerCamelCase names, enums by name, 64-bit
//! integers as strings, RFC 3339 timestamps, default values left out).

use std::sync::OnceLock;

use chrono::{DateTime, SecondsFormat, Utc};
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Map, Value};

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(helpdesk_proto::FILE_DESCRIPTOR_SET)
            .unwrap_or_else(|e| unreachable!("the built-in descriptor set decodes: {e}"))
    })
}

/// An encoded event of protobuf type `full_name` (its `ce-type`) as JSON.
pub fn event_json(full_name: &str, payload: &[u8]) -> Result<Value, String> {
    let descriptor = pool()
        .get_message_by_name(full_name)
        .ok_or_else(|| format!("unknown event type {full_name:?}"))?;
    let message = DynamicMessage::decode(descriptor, payload)
        .map_err(|e| format!("undecodable {full_name}: {e}"))?;
    serde_json::to_value(&message).map_err(|e| format!("{full_name} as JSON: {e}"))
}

/// When an event happened, from its JSON (`meta.occurredAt`).
pub fn occurred_at(data: &Value) -> Option<DateTime<Utc>> {
    let at = data.get("meta")?.get("occurredAt")?.as_str()?;
    DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The body sent for an event of `kind` that happened `at`.
pub fn body(kind: &str, at: DateTime<Utc>, data: Value) -> String {
    let mut top = Map::new();
    top.insert("type".into(), Value::String(kind.into()));
    top.insert(
        "timestamp".into(),
        Value::String(at.to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
    top.insert("data".into(), data);
    Value::Object(top).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use helpdesk_proto::common::v1::EventMeta;
    use helpdesk_proto::ticketing::v1::{Ticket, TicketCreated, TicketPriority};
    use prost::Message;

    #[test]
    fn events_render_in_the_canonical_json_mapping() {
        let event = TicketCreated {
            meta: Some(EventMeta {
                event_id: "e1".into(),
                account_id: "acme".into(),
                occurred_at: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            ticket: Some(Ticket {
                id: "t1".into(),
                number: 42,
                priority: TicketPriority::High as i32,
                ..Default::default()
            }),
        };
        let json = event_json(
            "helpdesk.ticketing.v1.TicketCreated",
            &event.encode_to_vec(),
        )
        .expect("renders");
        assert_eq!(json["ticket"]["number"], "42", "int64 as a string");
        assert_eq!(json["ticket"]["priority"], "TICKET_PRIORITY_HIGH");
        assert_eq!(json["meta"]["accountId"], "acme");
        assert_eq!(json["meta"]["occurredAt"], "2023-11-14T22:13:20Z");
        assert!(json["ticket"].get("subject").is_none(), "defaults left out");
        let at = occurred_at(&json).expect("a time");
        let body: Value = serde_json::from_str(&body("ticket.created", at, json)).expect("JSON");
        assert_eq!(body["type"], "ticket.created");
        assert_eq!(body["timestamp"], "2023-11-14T22:13:20.000Z");
        assert!(event_json("helpdesk.Nope", b"").is_err());
    }
}
