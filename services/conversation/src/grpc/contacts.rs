//! Contacts: upsert by external id or email, device info.

use helpdesk_kit::auth::Role;
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::outbox;
use helpdesk_proto::conversation::v1::*;

use super::{Api, Caller, Scoped};
use crate::domain::validate;
use crate::ops;
use crate::store::{self, conversations::Scope};

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
        let (row, created) = ops::upsert(
            &mut tx,
            &c.origin(),
            &contact,
            contact.device.as_ref(),
            ops::Identity::Trusted,
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
        if let Scope::Contact(own) = c.scope()
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
        let id = match (c.scope(), req.contact_id.as_str()) {
            (Scope::Contact(own), "") => Some(own),
            _ => validate::uuid(&mut v, "contact_id", &req.contact_id),
        };
        let device = req.device.unwrap_or_default();
        validate::device(&mut v, "device", &device);
        v.into_result()?;
        let id = id.unwrap_or_default();
        if matches!(c.scope(), Scope::Contact(own) if own != id) {
            return Err(Error::NotFound("contact"));
        }
        let mut tx = self.pool.begin().await?;
        let mut row = store::contacts::get(&mut tx, c.account(), id)
            .await?
            .ok_or(Error::NotFound("contact"))?;
        if row.set_device(&device) {
            row = store::contacts::update(&mut tx, &row).await?;
            let event = ContactUpdated {
                contact: Some(row.to_proto()),
                changed_fields: vec!["device".into()],
                ..Default::default()
            };
            outbox::emit(&mut tx, &c.origin(), event).await?;
        }
        tx.commit().await?;
        Ok(row.to_proto())
    }
}
