//! Contacts: matched by external id or email, created or updated.

use helpdesk_kit::error::Result;
use helpdesk_kit::event::{Origin, contact_actor};
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::outbox;
use helpdesk_proto::common::v1::ActorKind;
use helpdesk_proto::conversation::v1::{Contact, ContactCreated, ContactUpdated, DeviceInfo};
use sqlx::PgConnection;

use crate::domain::validate;
use crate::store::{self, contacts::ContactRow};

/// Whose identity a contact upsert carries, and so what it may match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Staff or an integration: trusted; matches a verified contact by external id,
    /// else email.
    Trusted,
    /// A visitor whose external id an identity hash proves: matches the verified
    /// contact with that external id only.
    VerifiedVisitor,
    /// A visitor without proof: always a new contact, its identity unverified.
    Unverified,
}

/// Finds the contact the caller's identity may match and updates it, or creates it;
/// records the matching event. Returns the contact and whether it was created. An
/// origin whose actor is a contact without id (a visitor creating itself) is
/// credited to the contact just made.
pub async fn upsert(
    conn: &mut PgConnection,
    origin: &Origin,
    input: &Contact,
    device: Option<&DeviceInfo>,
    identity: Identity,
) -> Result<(ContactRow, bool)> {
    let account = origin.account.as_str();
    let existing = match identity {
        Identity::Trusted => {
            store::contacts::find(conn, account, &input.external_id, &input.email).await?
        }
        Identity::VerifiedVisitor => {
            store::contacts::find(conn, account, &input.external_id, "").await?
        }
        Identity::Unverified => None,
    };
    match existing {
        Some(row) => Ok((merge(conn, origin, row, input, device).await?, false)),
        None => {
            let mut row = ContactRow::new(account);
            row.identity_verified = identity != Identity::Unverified;
            row.merge(input);
            if let Some(d) = device {
                row.set_device(d);
            }
            let row = store::contacts::insert(conn, &row).await?;
            let origin =
                if origin.actor.kind == ActorKind::Contact as i32 && origin.actor.id.is_empty() {
                    origin.acting_as(contact_actor(row.id))
                } else {
                    origin.clone()
                };
            let event = ContactCreated {
                contact: Some(row.to_proto()),
                ..Default::default()
            };
            outbox::emit(conn, &origin, event).await?;
            Ok((row, true))
        }
    }
}

/// Merges what `input` and `device` carry into `row`, saving it and recording
/// `contact.updated` when anything changed.
pub async fn merge(
    conn: &mut PgConnection,
    origin: &Origin,
    mut row: ContactRow,
    input: &Contact,
    device: Option<&DeviceInfo>,
) -> Result<ContactRow> {
    let mut changed: Vec<String> = row.merge(input).into_iter().map(String::from).collect();
    // Attributes accumulate across merges: the merged whole stays bounded too.
    let mut v = Violations::new();
    validate::attributes_total(
        &mut v,
        "contact.custom_attributes",
        &row.custom_attributes.0,
        " (together with the contact's stored attributes)",
    );
    v.into_result()?;
    if device.is_some_and(|d| row.set_device(d)) {
        changed.push("device".into());
    }
    if changed.is_empty() {
        return Ok(row);
    }
    let row = store::contacts::update(conn, &row).await?;
    let event = ContactUpdated {
        contact: Some(row.to_proto()),
        changed_fields: changed,
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    Ok(row)
}
