//! gRPC API: parse, authorise, call ops, map to the contract.

mod alerts;
mod emails;
mod input;

use std::sync::Arc;

use helpdesk_kit::auth::{Caller, Role};
use helpdesk_kit::error::{Error, Result, retry_conflicts};
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::page::{decode_time_cursor, page_size, paginate, time_cursor};
use helpdesk_proto::notification::v1::notification_service_server::NotificationService;
use helpdesk_proto::notification::v1::*;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::StorageName;
use crate::ops::{self, Policy};
use crate::store::{deliveries, endpoints};

/// The notification API's shared state.
#[derive(Clone)]
pub struct Api {
    pub(crate) pool: PgPool,
    pub(crate) policy: Arc<Policy>,
    /// Live fan-out of the account feeds (notifications to their agents).
    pub(crate) live: helpdesk_kit::live::Hub,
    /// Cancelled when the service stops: live streams end with it.
    pub(crate) streams: helpdesk_kit::CancellationToken,
}

/// Default and longest grace of a rotated secret.
const DEFAULT_GRACE_SECS: i64 = 24 * 3600;
const MAX_GRACE_SECS: i64 = 7 * 24 * 3600;
/// Default and longest health window.
const DEFAULT_WINDOW_SECS: i64 = 24 * 3600;
const MAX_WINDOW_SECS: i64 = 30 * 24 * 3600;

/// Webhooks are the account's configuration: admins and integrations only.
fn manager(c: &Caller) -> Result<(), Status> {
    c.claims.require(&[Role::Admin, Role::Integration])
}

fn id(field: &str, value: &str) -> Result<Uuid, Status> {
    let mut v = Violations::new();
    let id = helpdesk_kit::validate::uuid(&mut v, field, value);
    v.into_result()?;
    Ok(id.unwrap_or_default())
}

impl Api {
    async fn create_impl(&self, c: &Caller, req: CreateEndpointRequest) -> Result<Endpoint> {
        let e = req.endpoint.unwrap_or_default();
        let mut v = Violations::new();
        let mut input = input::endpoint(&mut v, &e, input::UPDATE_PATHS, self.policy.targets, true);
        v.into_result()?;
        let mut v = Violations::new();
        input::resolved_url(&mut v, "endpoint.url", &e.url, self.policy.targets).await;
        v.into_result()?;
        // New endpoints start enabled (UpdateEndpoint disables one).
        input.enabled = true;
        let mut tx = self.pool.begin().await?;
        let created = ops::endpoints::create(&mut tx, c.account(), input).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn update_impl(&self, c: &Caller, req: UpdateEndpointRequest) -> Result<Endpoint> {
        let e = req.endpoint.unwrap_or_default();
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        let endpoint = helpdesk_kit::validate::uuid(&mut v, "endpoint.id", &e.id);
        if paths.is_empty() {
            v.add(
                "update_mask",
                format!("required: {}", input::UPDATE_PATHS.join(", ")),
            );
        }
        for p in &paths {
            if !input::UPDATE_PATHS.contains(&p.as_str()) {
                v.add("update_mask", format!("unknown or read-only path {p:?}"));
            }
        }
        let named: Vec<&str> = paths.iter().map(String::as_str).collect();
        let input = input::endpoint(&mut v, &e, &named, self.policy.targets, false);
        v.into_result()?;
        if named.contains(&"url") {
            let mut v = Violations::new();
            input::resolved_url(&mut v, "endpoint.url", &e.url, self.policy.targets).await;
            v.into_result()?;
        }
        let mut tx = self.pool.begin().await?;
        let updated = ops::endpoints::update(
            &mut tx,
            c.account(),
            endpoint.unwrap_or_default(),
            input,
            &paths,
        )
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn list_impl(
        &self,
        c: &Caller,
        req: ListEndpointsRequest,
    ) -> Result<ListEndpointsResponse> {
        let mut v = Violations::new();
        let size = page_size(&mut v, req.page_size);
        let after = decode_time_cursor(&mut v, &req.page_token);
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = endpoints::list(&mut conn, c.account(), after, size as i64 + 1).await?;
        let next_page_token = paginate(&mut rows, size, |r| time_cursor(r.created_at, r.id));
        Ok(ListEndpointsResponse {
            endpoints: rows.iter().map(|r| r.to_proto()).collect(),
            next_page_token,
        })
    }

    async fn deliveries_impl(
        &self,
        c: &Caller,
        req: ListDeliveriesRequest,
    ) -> Result<ListDeliveriesResponse> {
        let mut v = Violations::new();
        let endpoint = helpdesk_kit::validate::uuid(&mut v, "endpoint_id", &req.endpoint_id);
        let status: DeliveryStatus =
            helpdesk_kit::validate::enumeration(&mut v, "status", req.status);
        let size = page_size(&mut v, req.page_size);
        let before = decode_time_cursor(&mut v, &req.page_token);
        v.into_result()?;
        let endpoint = endpoint.unwrap_or_default();
        let mut conn = self.pool.acquire().await?;
        ops::endpoints::get(&mut conn, c.account(), endpoint, false).await?;
        let status = (status != DeliveryStatus::Unspecified).then(|| status.storage_name());
        let mut rows =
            deliveries::list(&mut conn, endpoint, status, before, size as i64 + 1).await?;
        let next_page_token = paginate(&mut rows, size, |r| time_cursor(r.created_at, r.id));
        Ok(ListDeliveriesResponse {
            deliveries: rows.iter().map(|r| r.to_proto()).collect(),
            next_page_token,
        })
    }
}

#[tonic::async_trait]
impl NotificationService for Api {
    type WatchNotificationsStream = alerts::NotificationStream;

    async fn list_notifications(
        &self,
        r: Request<ListNotificationsRequest>,
    ) -> Result<Response<ListNotificationsResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.list_notifications_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn mark_read(
        &self,
        r: Request<MarkReadRequest>,
    ) -> Result<Response<MarkReadResponse>, Status> {
        let c = Caller::of(&r)?;
        let ids = r.into_inner().ids;
        Ok(Response::new(self.mark_read_impl(&c, Some(ids)).await?))
    }

    async fn mark_all_read(
        &self,
        r: Request<MarkAllReadRequest>,
    ) -> Result<Response<MarkReadResponse>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(self.mark_read_impl(&c, None).await?))
    }

    async fn watch_notifications(
        &self,
        r: Request<WatchNotificationsRequest>,
    ) -> Result<Response<Self::WatchNotificationsStream>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(self.watch_notifications_impl(c).await?))
    }

    async fn get_notification_preferences(
        &self,
        r: Request<GetNotificationPreferencesRequest>,
    ) -> Result<Response<NotificationPreferences>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(self.preferences_impl(&c).await?))
    }

    async fn update_notification_preferences(
        &self,
        r: Request<UpdateNotificationPreferencesRequest>,
    ) -> Result<Response<NotificationPreferences>, Status> {
        let c = Caller::of(&r)?;
        Ok(Response::new(
            self.update_preferences_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn get_email_settings(
        &self,
        r: Request<GetEmailSettingsRequest>,
    ) -> Result<Response<EmailSettings>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        Ok(Response::new(self.get_email_settings_impl(&c).await?))
    }

    async fn update_email_settings(
        &self,
        r: Request<UpdateEmailSettingsRequest>,
    ) -> Result<Response<EmailSettings>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        Ok(Response::new(
            self.update_email_settings_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn list_emails(
        &self,
        r: Request<ListEmailsRequest>,
    ) -> Result<Response<ListEmailsResponse>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        Ok(Response::new(
            self.list_emails_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn create_endpoint(
        &self,
        r: Request<CreateEndpointRequest>,
    ) -> Result<Response<Endpoint>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        Ok(Response::new(self.create_impl(&c, r.into_inner()).await?))
    }

    async fn get_endpoint(
        &self,
        r: Request<GetEndpointRequest>,
    ) -> Result<Response<Endpoint>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        let id = id("id", &r.get_ref().id)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let row = ops::endpoints::get(&mut conn, c.account(), id, false).await?;
        Ok(Response::new(row.to_proto()))
    }

    async fn list_endpoints(
        &self,
        r: Request<ListEndpointsRequest>,
    ) -> Result<Response<ListEndpointsResponse>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        Ok(Response::new(self.list_impl(&c, r.into_inner()).await?))
    }

    async fn update_endpoint(
        &self,
        r: Request<UpdateEndpointRequest>,
    ) -> Result<Response<Endpoint>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        Ok(Response::new(
            retry_conflicts(|| self.update_impl(&c, r.get_ref().clone())).await?,
        ))
    }

    async fn delete_endpoint(
        &self,
        r: Request<DeleteEndpointRequest>,
    ) -> Result<Response<DeleteEndpointResponse>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        let id = id("id", &r.get_ref().id)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        ops::endpoints::delete(&mut conn, c.account(), id).await?;
        Ok(Response::new(DeleteEndpointResponse {}))
    }

    async fn get_endpoint_secret(
        &self,
        r: Request<GetEndpointSecretRequest>,
    ) -> Result<Response<EndpointSecret>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        let id = id("endpoint_id", &r.get_ref().endpoint_id)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        Ok(Response::new(
            ops::endpoints::secret(&mut conn, c.account(), id).await?,
        ))
    }

    async fn rotate_secret(
        &self,
        r: Request<RotateSecretRequest>,
    ) -> Result<Response<EndpointSecret>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        let req = r.get_ref();
        let mut v = Violations::new();
        let endpoint = helpdesk_kit::validate::uuid(&mut v, "endpoint_id", &req.endpoint_id);
        v.check(
            !(0..=MAX_GRACE_SECS).contains(&req.grace_seconds),
            "grace_seconds",
            "0 (a day) to 604800 (a week)",
        );
        v.into_result()?;
        let grace = match req.grace_seconds {
            0 => DEFAULT_GRACE_SECS,
            s => s,
        };
        let endpoint = endpoint.unwrap_or_default();
        let rotated = retry_conflicts(|| async {
            let mut tx = self.pool.begin().await?;
            let s = ops::endpoints::rotate(
                &mut tx,
                c.account(),
                endpoint,
                chrono::Duration::seconds(grace),
            )
            .await?;
            tx.commit().await?;
            Ok(s)
        })
        .await?;
        Ok(Response::new(rotated))
    }

    async fn send_test_event(
        &self,
        r: Request<SendTestEventRequest>,
    ) -> Result<Response<Delivery>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        let id = id("endpoint_id", &r.get_ref().endpoint_id)?;
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let d = ops::webhooks::send_test(&mut tx, c.account(), id).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(d))
    }

    async fn list_deliveries(
        &self,
        r: Request<ListDeliveriesRequest>,
    ) -> Result<Response<ListDeliveriesResponse>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        Ok(Response::new(
            self.deliveries_impl(&c, r.into_inner()).await?,
        ))
    }

    async fn list_delivery_attempts(
        &self,
        r: Request<ListDeliveryAttemptsRequest>,
    ) -> Result<Response<ListDeliveryAttemptsResponse>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        let id = id("delivery_id", &r.get_ref().delivery_id)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        // Only a delivery of the caller's account.
        ops::webhooks::delivery(&mut conn, c.account(), id).await?;
        let attempts = deliveries::attempts(&mut conn, id)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(ListDeliveryAttemptsResponse { attempts }))
    }

    async fn redeliver(&self, r: Request<RedeliverRequest>) -> Result<Response<Delivery>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        let id = id("delivery_id", &r.get_ref().delivery_id)?;
        let d = retry_conflicts(|| async {
            let mut tx = self.pool.begin().await?;
            let d = ops::webhooks::redeliver(&mut tx, c.account(), id).await?;
            tx.commit().await?;
            Ok(d)
        })
        .await?;
        Ok(Response::new(d))
    }

    async fn get_endpoint_health(
        &self,
        r: Request<GetEndpointHealthRequest>,
    ) -> Result<Response<EndpointHealth>, Status> {
        let c = Caller::of(&r)?;
        manager(&c)?;
        let req = r.get_ref();
        let mut v = Violations::new();
        let endpoint = helpdesk_kit::validate::uuid(&mut v, "endpoint_id", &req.endpoint_id);
        v.check(
            !(0..=MAX_WINDOW_SECS).contains(&req.window_seconds),
            "window_seconds",
            "0 (a day) to 2592000 (30 days)",
        );
        v.into_result()?;
        let window = match req.window_seconds {
            0 => DEFAULT_WINDOW_SECS,
            s => s,
        };
        let since = chrono::Utc::now() - chrono::Duration::seconds(window);
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        Ok(Response::new(
            ops::endpoints::health(&mut conn, c.account(), endpoint.unwrap_or_default(), since)
                .await?,
        ))
    }
}
