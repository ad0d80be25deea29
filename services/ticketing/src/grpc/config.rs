//! The account's statuses and custom fields.

use helpdesk_kit::auth::{Caller, Role};
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::ticketing::v1::*;

use super::Api;
use crate::domain::fields::{self, MAX_DEFINITIONS};
use crate::domain::statuses::StatusDef;
use crate::store::config;

/// Most statuses an account adds.
const MAX_STATUSES: usize = 50;

impl Api {
    pub(crate) async fn list_statuses_impl(
        &self,
        c: &Caller,
        _: ListStatusesRequest,
    ) -> Result<ListStatusesResponse> {
        c.claims.require_staff()?;
        let mut conn = self.pool.acquire().await?;
        Ok(ListStatusesResponse {
            statuses: config::statuses(&mut conn, c.account())
                .await?
                .iter()
                .map(StatusDef::to_proto)
                .collect(),
        })
    }

    pub(crate) async fn create_status_impl(
        &self,
        c: &Caller,
        req: CreateStatusRequest,
    ) -> Result<Status> {
        c.claims.require(&[Role::Admin])?;
        let s = req.status.unwrap_or_default();
        let mut v = Violations::new();
        v.check(
            !helpdesk_kit::validate::is_name(&s.key),
            "status.key",
            "1-64 characters of [a-z0-9_-]",
        );
        let category: StatusCategory =
            helpdesk_kit::validate::enumeration(&mut v, "status.category", s.category);
        v.check(
            s.category == 0,
            "status.category",
            "new, open, pending, on_hold, solved or closed",
        );
        helpdesk_kit::validate::text(&mut v, "status.label", &s.label, true, 100);
        helpdesk_kit::validate::text(
            &mut v,
            "status.external_label",
            &s.external_label,
            true,
            100,
        );
        v.into_result()?;
        let def = StatusDef {
            key: s.key.clone(),
            category,
            label: s.label.trim().to_string(),
            external_label: s.external_label.trim().to_string(),
            built_in: false,
        };
        let mut tx = self.pool.begin().await?;
        let existing = config::statuses(&mut tx, c.account()).await?;
        if existing.iter().any(|e| e.key == def.key) {
            return Err(Error::AlreadyExists(format!("status {} exists", def.key)));
        }
        if existing.iter().filter(|e| !e.built_in).count() >= MAX_STATUSES {
            return Err(Error::FailedPrecondition(format!(
                "an account has at most {MAX_STATUSES} statuses of its own"
            )));
        }
        config::insert_status(&mut tx, c.account(), &def).await?;
        tx.commit().await?;
        Ok(def.to_proto())
    }

    pub(crate) async fn list_fields_impl(
        &self,
        c: &Caller,
        _: ListFieldDefinitionsRequest,
    ) -> Result<ListFieldDefinitionsResponse> {
        c.claims.require_staff()?;
        let mut conn = self.pool.acquire().await?;
        Ok(ListFieldDefinitionsResponse {
            fields: config::fields(&mut conn, c.account()).await?,
        })
    }

    pub(crate) async fn create_field_impl(
        &self,
        c: &Caller,
        req: CreateFieldDefinitionRequest,
    ) -> Result<FieldDefinition> {
        c.claims.require(&[Role::Admin])?;
        let mut d = req.field.unwrap_or_default();
        let mut v = Violations::new();
        fields::check_definition(&mut v, &d);
        v.into_result()?;
        d.label = d.label.trim().to_string();
        d.options = d.options.iter().map(|o| o.trim().to_string()).collect();
        let mut tx = self.pool.begin().await?;
        if config::fields(&mut tx, c.account()).await?.len() >= MAX_DEFINITIONS {
            return Err(Error::FailedPrecondition(format!(
                "an account has at most {MAX_DEFINITIONS} custom fields"
            )));
        }
        config::insert_field(&mut tx, c.account(), &d).await?;
        tx.commit().await?;
        Ok(d)
    }
}
