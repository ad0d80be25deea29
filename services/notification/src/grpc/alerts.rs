//! The caller's own notifications: list, read, watch live, preferences.

use std::pin::Pin;

use futures::Stream;
use helpdesk_kit::auth::Caller;
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::live::Scope;
use helpdesk_kit::page::{page_size, paginate};
use helpdesk_proto::Event;
use helpdesk_proto::notification::v1::*;
use prost::Message as _;
use tonic::Status;
use uuid::Uuid;

use super::Api;
use crate::domain::StorageName;
use crate::domain::alerts::default_preference;
use crate::ops;
use crate::store::alerts;
use helpdesk_kit::page::{decode_time_cursor, time_cursor};

/// A caller's live notifications.
pub type NotificationStream =
    Pin<Box<dyn Stream<Item = Result<NotificationUpdate, Status>> + Send>>;

/// Most ids one MarkRead takes.
const MAX_IDS: usize = 500;

impl Api {
    pub(crate) async fn list_notifications_impl(
        &self,
        c: &Caller,
        req: ListNotificationsRequest,
    ) -> Result<ListNotificationsResponse> {
        c.claims.require_staff()?;
        let mut v = Violations::new();
        let size = page_size(&mut v, req.page_size);
        let before = decode_time_cursor(&mut v, &req.page_token);
        v.into_result()?;
        let agent = c.claims.sub.as_str();
        let mut conn = self.pool.acquire().await?;
        let prefs = alerts::preferences(&mut conn, c.account(), agent).await?;
        let mut rows = alerts::list(
            &mut conn,
            c.account(),
            agent,
            req.unread_only,
            before,
            size as i64 + 1,
        )
        .await?;
        let next_page_token = paginate(&mut rows, size, |r| time_cursor(r.created_at, r.id));
        let unread_count = alerts::unread(&mut conn, c.account(), agent).await?;
        Ok(ListNotificationsResponse {
            notifications: rows
                .iter()
                .map(|r| {
                    let kind = NotificationKind::from_storage(&r.kind);
                    let pref = prefs
                        .iter()
                        .find(|p| p.kind == kind as i32)
                        .cloned()
                        .unwrap_or_else(|| default_preference(kind));
                    r.to_proto(&pref)
                })
                .collect(),
            unread_count,
            next_page_token,
        })
    }

    pub(crate) async fn mark_read_impl(
        &self,
        c: &Caller,
        ids: Option<Vec<String>>,
    ) -> Result<MarkReadResponse> {
        c.claims.require_staff()?;
        let mut v = Violations::new();
        let parsed: Option<Vec<Uuid>> = ids.map(|ids| {
            if ids.is_empty() || ids.len() > MAX_IDS {
                v.add("ids", "1 to 500 notification ids");
            }
            ids.iter()
                .enumerate()
                .filter_map(|(i, id)| {
                    helpdesk_kit::validate::uuid(&mut v, &format!("ids[{i}]"), id)
                })
                .collect()
        });
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        let unread_count =
            ops::alerts::mark_read(&mut tx, &c.origin(), &c.claims.sub, parsed.as_deref()).await?;
        tx.commit().await?;
        Ok(MarkReadResponse { unread_count })
    }

    pub(crate) async fn watch_notifications_impl(&self, c: Caller) -> Result<NotificationStream> {
        c.claims.require_staff()?;
        let agent = c.claims.sub.clone();
        // Watch first, then count: nothing that happens in between is missed.
        let mut watch = self.live.watch(&c, Scope::Key(agent.clone())).await?;
        let unread_count = {
            let mut conn = self.pool.acquire().await?;
            alerts::unread(&mut conn, c.account(), &agent).await?
        };
        let shutdown = self.streams.clone();
        let stream = async_stream::stream! {
            yield Ok(NotificationUpdate { notification: None, unread_count });
            loop {
                let msg = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    msg = watch.next() => msg,
                };
                let msg = match msg {
                    Some(Ok(msg)) => msg,
                    Some(Err(status)) => {
                        yield Err(status);
                        break;
                    }
                    None => break,
                };
                if msg.kind == AgentNotified::KIND {
                    let Ok(e) = AgentNotified::decode(msg.payload) else { continue };
                    if e.notification.as_ref().is_some_and(|n| n.agent_id == agent) {
                        yield Ok(NotificationUpdate {
                            notification: e.notification,
                            unread_count: e.unread_count,
                        });
                    }
                } else if msg.kind == NotificationsRead::KIND {
                    let Ok(e) = NotificationsRead::decode(msg.payload) else { continue };
                    if e.agent_id == agent {
                        yield Ok(NotificationUpdate { notification: None, unread_count: e.unread_count });
                    }
                }
            }
        };
        Ok(Box::pin(stream))
    }

    pub(crate) async fn preferences_impl(&self, c: &Caller) -> Result<NotificationPreferences> {
        c.claims.require_staff()?;
        let mut conn = self.pool.acquire().await?;
        Ok(NotificationPreferences {
            preferences: alerts::preferences(&mut conn, c.account(), &c.claims.sub).await?,
        })
    }

    pub(crate) async fn update_preferences_impl(
        &self,
        c: &Caller,
        req: UpdateNotificationPreferencesRequest,
    ) -> Result<NotificationPreferences> {
        c.claims.require_staff()?;
        let mut v = Violations::new();
        let mut seen = Vec::new();
        for (i, p) in req.preferences.iter().enumerate() {
            let field = format!("preferences[{i}].kind");
            let kind: NotificationKind =
                helpdesk_kit::validate::enumeration(&mut v, &field, p.kind);
            if kind == NotificationKind::Unspecified {
                v.add(field.clone(), "required");
            } else if seen.contains(&kind) {
                v.add(field, "one preference per kind");
            }
            seen.push(kind);
        }
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        for p in &req.preferences {
            alerts::set_preference(&mut tx, c.account(), &c.claims.sub, p).await?;
        }
        let preferences = alerts::preferences(&mut tx, c.account(), &c.claims.sub).await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(NotificationPreferences { preferences })
    }
}
