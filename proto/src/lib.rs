//! Generated protobuf types and gRPC stubs of the helpdesk platform.
//!
//! Every package under `proto/helpdesk/` is one module here, e.g.
//! [`conversation::v1`]. [`FILE_DESCRIPTOR_SET`] feeds gRPC server reflection and lets
//! tools decode any event by its `ce-type` header.

#![allow(clippy::all, missing_docs)]

/// Encoded `FileDescriptorSet` of every helpdesk `.proto` file.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/helpdesk_descriptor.bin"));

mod command;
mod event;
pub mod json;
pub use command::Command;
pub use event::{CatalogEntry, Event, catalog};

pub mod common {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/helpdesk.common.v1.rs"));
    }
}

pub mod conversation {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/helpdesk.conversation.v1.rs"));
    }
}

pub mod ticketing {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/helpdesk.ticketing.v1.rs"));
    }
}

pub mod notification {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/helpdesk.notification.v1.rs"));
    }
}

pub mod automation {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/helpdesk.automation.v1.rs"));
    }
}

pub mod routing {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/helpdesk.routing.v1.rs"));
    }
}
