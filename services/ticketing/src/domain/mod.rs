//! Ticketing's pure decisions: statuses and the moves between them, custom fields
//! and their values, input limits. No I/O.

pub mod calendar;
pub mod fields;
pub mod sla;
pub mod statuses;

pub use helpdesk_kit::storage::StorageName;

/// Longest subject.
pub const MAX_SUBJECT_CHARS: usize = 255;
/// Longest description or comment.
pub const MAX_BODY_CHARS: usize = 65_536;
/// Most tags on a ticket; longest tag.
pub const MAX_TAGS: usize = 30;
pub const MAX_TAG_CHARS: usize = 64;
/// Most attachments on a ticket or comment.
pub const MAX_ATTACHMENTS: usize = 20;
/// Most followers, linked conversations.
pub const MAX_FOLLOWERS: usize = 50;
pub const MAX_CONVERSATIONS: usize = 50;
/// Most transcript lines a ticket keeps of its chat.
pub const MAX_TRANSCRIPT_LINES: usize = 2_000;
/// Most comments on one ticket.
pub const MAX_COMMENTS: i32 = 5_000;
/// Longest category.
pub const MAX_CATEGORY_CHARS: usize = 100;
