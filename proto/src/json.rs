//! Events in protobuf's canonical JSON mapping (lowerCamelCase names, enums by name,
//! 64-bit integers as strings, RFC 3339 timestamps, default values left out), decoded
//! by their `ce-type` with the built-in descriptor set: what webhooks carry and what
//! `helpdesk events tail` prints.

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::Value;

/// Every message and enum of the platform's protos.
pub fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET)
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
