//! SQL, every query scoped by account.

pub mod comments;
pub mod config;
pub mod history;
pub mod sla;
pub mod tickets;
pub mod transcripts;

use helpdesk_proto::ticketing::v1::Attachment;
use serde::{Deserialize, Serialize};

/// Attachment metadata as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredAttachment {
    pub name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub url: String,
}

impl From<&Attachment> for StoredAttachment {
    fn from(a: &Attachment) -> Self {
        Self {
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            size_bytes: a.size_bytes,
            url: a.url.clone(),
        }
    }
}

impl StoredAttachment {
    /// As the API shows it.
    pub fn to_proto(&self) -> Attachment {
        Attachment {
            name: self.name.clone(),
            content_type: self.content_type.clone(),
            size_bytes: self.size_bytes,
            url: self.url.clone(),
        }
    }
}
