//! Contacts: upsert by external id or email, device info.

use helpdesk_kit::auth::Role;
use helpdesk_kit::event::{self, Causation};
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::common::v1::{Actor, ActorKind};
use helpdesk_proto::conversation::v1::*;
use sqlx::PgConnection;

use super::{Api, Caller};
use crate::domain::validate;
use crate::error::{Error, Result};
use crate::events;
use crate::store::{self, contacts::ContactRow, conversations::Scope};

/// Checks the writable fields of a contact under `field`.
pub(crate) fn check_contact(v: &mut Violations, field: &str, c: &Contact) {
    validate::text(
        v,
        &format!("{field}.external_id"),
        &c.external_id,
        false,
        200,
    );
    validate::text(v, &format!("{field}.name"), &c.name, false, 200);
    validate::text(v, &format!("{field}.phone"), &c.phone, false, 32);
    validate::email(v, &format!("{field}.email"), &c.email);
    validate::attributes(
        v,
        &format!("{field}.custom_attributes"),
        &c.custom_attributes,
    );
    if let Some(d) = &c.device {
        validate::device(v, &format!("{field}.device"), d);
    }
}

/// Finds the contact by external id / email and updates it, or creates it; records
/// the matching event. Returns the contact and whether it was created.
pub(crate) async fn upsert(
    conn: &mut PgConnection,
    account: &str,
    input: &Contact,
    device: Option<&DeviceInfo>,
    match_existing: bool,
    actor: &Actor,
    causation: &Causation,
) -> Result<(ContactRow, bool)> {
    let existing = if match_existing {
        store::contacts::find(conn, account, &input.external_id, &input.email).await?
    } else {
        None
    };
    match existing {
        Some(mut row) => {
            let mut changed: Vec<String> = row.merge(input).into_iter().map(String::from).collect();
            if device.is_some_and(|d| row.set_device(d)) {
                changed.push("device".into());
            }
            if changed.is_empty() {
                return Ok((row, false));
            }
            let row = store::contacts::update(conn, &row).await?;
            events::contact_updated(
                conn,
                event::meta(account, actor, causation),
                &row.to_proto(),
                changed,
            )
            .await?;
            Ok((row, false))
        }
        None => {
            let mut row = ContactRow::new(account);
            row.merge(input);
            if let Some(d) = device {
                row.set_device(d);
            }
            let row = store::contacts::insert(conn, &row).await?;
            // A visitor creating itself: the actor is the contact just made.
            let actor = match actor.kind == ActorKind::Contact as i32 && actor.id.is_empty() {
                true => Actor {
                    kind: actor.kind,
                    id: row.id.to_string(),
                },
                false => actor.clone(),
            };
            events::contact_created(
                conn,
                event::meta(account, &actor, causation),
                &row.to_proto(),
            )
            .await?;
            Ok((row, true))
        }
    }
}

impl Api {
    pub(crate) async fn upsert_contact_impl(
        &self,
        c: &Caller,
        req: UpsertContactRequest,
    ) -> Result<UpsertContactResponse> {
        c.claims.require(&[
            Role::Admin,
            Role::Supervisor,
            Role::Agent,
            Role::Integration,
        ])?;
        let contact = req.contact.unwrap_or_default();
        let mut v = Violations::new();
        if contact.external_id.is_empty() && contact.email.is_empty() {
            v.add(
                "contact.external_id",
                "external_id or email is required to match a contact",
            );
        }
        check_contact(&mut v, "contact", &contact);
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        let (row, created) = upsert(
            &mut tx,
            c.account(),
            &contact,
            contact.device.as_ref(),
            true,
            &c.claims.actor(),
            &Causation::request(),
        )
        .await?;
        tx.commit().await?;
        Ok(UpsertContactResponse {
            contact: Some(row.to_proto()),
            created,
        })
    }

    pub(crate) async fn get_contact_impl(
        &self,
        c: &Caller,
        req: GetContactRequest,
    ) -> Result<Contact> {
        let mut v = Violations::new();
        let id = validate::uuid(&mut v, "id", &req.id);
        v.into_result()?;
        let id = id.unwrap_or_default();
        if let Scope::Contact(own) = c.scope
            && own != id
        {
            return Err(Error::NotFound("contact"));
        }
        let mut conn = self.pool.acquire().await?;
        let row = store::contacts::get(&mut conn, c.account(), id)
            .await?
            .ok_or(Error::NotFound("contact"))?;
        Ok(row.to_proto())
    }

    pub(crate) async fn update_device_impl(
        &self,
        c: &Caller,
        req: UpdateDeviceInfoRequest,
    ) -> Result<Contact> {
        let mut v = Violations::new();
        let id = match (c.scope, req.contact_id.as_str()) {
            (Scope::Contact(own), "") => Some(own),
            _ => validate::uuid(&mut v, "contact_id", &req.contact_id),
        };
        let device = req.device.unwrap_or_default();
        validate::device(&mut v, "device", &device);
        v.into_result()?;
        let id = id.unwrap_or_default();
        if matches!(c.scope, Scope::Contact(own) if own != id) {
            return Err(Error::NotFound("contact"));
        }
        let mut tx = self.pool.begin().await?;
        let mut row = store::contacts::get(&mut tx, c.account(), id)
            .await?
            .ok_or(Error::NotFound("contact"))?;
        if row.set_device(&device) {
            row = store::contacts::update(&mut tx, &row).await?;
            let meta = event::meta(c.account(), &c.claims.actor(), &Causation::request());
            events::contact_updated(&mut tx, meta, &row.to_proto(), vec!["device".into()]).await?;
        }
        tx.commit().await?;
        Ok(row.to_proto())
    }
}
