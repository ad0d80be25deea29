//! The event catalog, generated from the protos (`helpdesk events catalog`, kept in
//! `docs/event-catalog.md`): each event's subject, message, fields and a JSON example
//! in protobuf's JSON mapping.

use std::collections::HashMap;
use std::fmt::Write;

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};

/// How deep the examples fill nested messages.
const DEPTH: usize = 3;

/// The catalog as Markdown.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Event catalog\n\n\
         Generated from `proto/` by `helpdesk events catalog` (a test fails when it is out of \
         date). Every event is published on `<root>.evt.<account>.<type>` (root `helpdesk` by \
         default) with the CloudEvents headers of [events.md](events.md); its body is the \
         message below, encoded in protobuf. The JSON is the same event in protobuf's JSON \
         mapping, as webhooks carry it in `data` and `helpdesk events tail` prints it; the \
         values are examples. `helpdesk events descriptors > helpdesk.binpb` writes the \
         descriptor set, with which any protobuf library decodes the bodies.\n",
    );
    let mut entries = helpdesk_proto::catalog();
    entries.sort_by(|a, b| a.kind.cmp(b.kind));
    out.push_str("\n| Type | Message |\n| --- | --- |\n");
    for e in &entries {
        let _ = writeln!(
            out,
            "| [`{}`](#{}) | `{}` |",
            e.kind,
            e.kind.replace('.', ""),
            e.full_name
        );
    }
    let pool = helpdesk_proto::json::pool();
    for e in &entries {
        let Some(message) = pool.get_message_by_name(&e.full_name) else {
            continue;
        };
        let _ = write!(
            out,
            "\n## `{}`\n\n- Subject: `<root>.evt.<account>.{}`\n- Message: `{}`\n\n\
             | Field | JSON | Type |\n| --- | --- | --- |\n",
            e.kind, e.kind, e.full_name
        );
        for field in message.fields() {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} |",
                field.name(),
                field.json_name(),
                type_name(&field)
            );
        }
        let example = serde_json::to_string_pretty(&example(&message, 0)).unwrap_or_default();
        let _ = write!(out, "\n```json\n{example}\n```\n");
    }
    out
}

fn type_name(field: &FieldDescriptor) -> String {
    let base = |kind: &Kind| match kind {
        Kind::Message(m) => format!("`{}`", m.full_name()),
        Kind::Enum(e) => format!("`{}` (enum)", e.full_name()),
        other => format!("{other:?}").to_lowercase(),
    };
    if field.is_map()
        && let Kind::Message(entry) = field.kind()
    {
        return format!(
            "map of {} to {}",
            base(&entry.map_entry_key_field().kind()),
            base(&entry.map_entry_value_field().kind())
        );
    }
    if field.is_list() {
        return format!("list of {}", base(&field.kind()));
    }
    base(&field.kind())
}

/// A message filled with example values.
pub fn example(message: &MessageDescriptor, depth: usize) -> DynamicMessage {
    let mut m = DynamicMessage::new(message.clone());
    match message.full_name() {
        "google.protobuf.Timestamp" => {
            // 2026-12-01T09:00:00Z.
            m.set_field_by_name("seconds", Value::I64(1_796_115_600));
            return m;
        }
        "google.protobuf.FieldMask" => {
            m.set_field_by_name("paths", Value::List(vec![Value::String("labels".into())]));
            return m;
        }
        _ => {}
    }
    if depth >= DEPTH {
        return m;
    }
    for field in message.fields() {
        // One member of each oneof is enough.
        if let Some(oneof) = field.containing_oneof()
            && !oneof.is_synthetic()
            && oneof
                .fields()
                .next()
                .is_some_and(|f| f.number() != field.number())
        {
            continue;
        }
        let value = if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                continue;
            };
            let key = match value_of(&entry.map_entry_key_field(), depth) {
                Value::String(s) => MapKey::String(s),
                Value::I32(n) => MapKey::I32(n),
                Value::I64(n) => MapKey::I64(n),
                Value::U32(n) => MapKey::U32(n),
                Value::U64(n) => MapKey::U64(n),
                Value::Bool(b) => MapKey::Bool(b),
                _ => continue,
            };
            let value = value_of(&entry.map_entry_value_field(), depth);
            Value::Map(HashMap::from([(key, value)]))
        } else if field.is_list() {
            Value::List(vec![value_of(&field, depth)])
        } else {
            value_of(&field, depth)
        };
        m.set_field(&field, value);
    }
    m
}

fn value_of(field: &FieldDescriptor, depth: usize) -> Value {
    let name = field.name();
    match field.kind() {
        Kind::String => Value::String(sample_text(name)),
        Kind::Bytes => Value::Bytes(b"example".to_vec().into()),
        Kind::Bool => Value::Bool(true),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(3),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(42),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(3),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(42),
        Kind::Float => Value::F32(4.5),
        Kind::Double => Value::F64(4.5),
        Kind::Enum(e) => Value::EnumNumber(
            e.values()
                .find(|v| v.number() != 0)
                .map_or(0, |v| v.number()),
        ),
        Kind::Message(m) => Value::Message(example(&m, depth + 1)),
    }
}

fn sample_text(field: &str) -> String {
    match field {
        "account_id" => "acme".into(),
        "email" => "maria@example.com".into(),
        "name" | "agent_name" => "Ana".into(),
        f if f == "id" || f.ends_with("_id") => "0193a6c4-1f7e-7c3a-9d2e-5b8f4a1c2d3e".into(),
        f if f.contains("content") || f.contains("body") || f.contains("message") => {
            "Where is my parcel?".into()
        }
        f => format!("example {f}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_catalog_is_the_one_the_protos_make() {
        let committed = include_str!("../../../docs/event-catalog.md");
        assert!(
            committed == markdown(),
            "docs/event-catalog.md is out of date: run `cargo run --bin helpdesk -- events catalog > docs/event-catalog.md`"
        );
    }

    #[test]
    fn every_example_is_protobufs_own_json_for_its_event() {
        let pool = helpdesk_proto::json::pool();
        let cases: Vec<(String, serde_json::Value)> = helpdesk_proto::catalog()
            .into_iter()
            .map(|e| {
                let message = pool.get_message_by_name(&e.full_name).expect("described");
                let bytes = prost::Message::encode_to_vec(&example(&message, 0));
                let json = helpdesk_proto::json::event_json(&e.full_name, &bytes).expect("renders");
                assert!(json.get("meta").is_some(), "{} has its meta", e.kind);
                (e.full_name, json)
            })
            .collect();
        helpdesk_tests::protobuf_json::check(&cases);
    }
}
