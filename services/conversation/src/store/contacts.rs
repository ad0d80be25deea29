//! Contacts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::conversation::v1::{Contact, DeviceInfo};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

/// A stored contact.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContactRow {
    pub id: Uuid,
    pub account_id: String,
    pub external_id: Option<String>,
    pub name: String,
    pub email: Option<String>,
    pub phone: String,
    pub custom_attributes: Json<HashMap<String, String>>,
    pub device: Json<HashMap<String, String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// External id and email were given by staff, an integration or a verified
    /// visitor; only such contacts are ever matched by them.
    pub identity_verified: bool,
}

/// Device info as stored (a flat JSON object).
pub fn device_to_map(d: &DeviceInfo) -> HashMap<String, String> {
    [
        ("app_version", &d.app_version),
        ("os", &d.os),
        ("network_type", &d.network_type),
        ("current_page", &d.current_page),
        ("user_agent", &d.user_agent),
        ("locale", &d.locale),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect()
}

fn device_from_map(m: &HashMap<String, String>) -> DeviceInfo {
    let get = |k: &str| m.get(k).cloned().unwrap_or_default();
    DeviceInfo {
        app_version: get("app_version"),
        os: get("os"),
        network_type: get("network_type"),
        current_page: get("current_page"),
        user_agent: get("user_agent"),
        locale: get("locale"),
    }
}

impl ContactRow {
    /// A new contact in `account`.
    pub fn new(account: &str) -> Self {
        let now = Utc::now();
        Self {
            id: Uuid::now_v7(),
            account_id: account.to_string(),
            external_id: None,
            name: String::new(),
            email: None,
            phone: String::new(),
            custom_attributes: Json(HashMap::new()),
            device: Json(HashMap::new()),
            created_at: now,
            updated_at: now,
            identity_verified: false,
        }
    }

    /// As the API shows it.
    pub fn to_proto(&self) -> Contact {
        Contact {
            id: self.id.to_string(),
            account_id: self.account_id.clone(),
            external_id: self.external_id.clone().unwrap_or_default(),
            name: self.name.clone(),
            email: self.email.clone().unwrap_or_default(),
            phone: self.phone.clone(),
            custom_attributes: self.custom_attributes.0.clone(),
            device: Some(device_from_map(&self.device.0)),
            create_time: Some(to_timestamp(self.created_at)),
            update_time: Some(to_timestamp(self.updated_at)),
            identity_verified: self.identity_verified,
        }
    }

    /// Applies the non-empty fields of `c`; returns the names of fields that changed.
    pub fn merge(&mut self, c: &Contact) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if !c.external_id.is_empty() && self.external_id.as_deref() != Some(c.external_id.as_str())
        {
            self.external_id = Some(c.external_id.clone());
            changed.push("external_id");
        }
        if !c.name.is_empty() && self.name != c.name {
            self.name = c.name.clone();
            changed.push("name");
        }
        if !c.email.is_empty() && self.email.as_deref() != Some(c.email.as_str()) {
            self.email = Some(c.email.clone());
            changed.push("email");
        }
        if !c.phone.is_empty() && self.phone != c.phone {
            self.phone = c.phone.clone();
            changed.push("phone");
        }
        if !c.custom_attributes.is_empty() {
            let mut merged = self.custom_attributes.0.clone();
            merged.extend(c.custom_attributes.clone());
            if merged != self.custom_attributes.0 {
                self.custom_attributes = Json(merged);
                changed.push("custom_attributes");
            }
        }
        changed
    }

    /// Replaces the device info; true when it changed.
    pub fn set_device(&mut self, d: &DeviceInfo) -> bool {
        let map = device_to_map(d);
        if map.is_empty() || map == self.device.0 {
            return false;
        }
        self.device = Json(map);
        true
    }
}

const COLUMNS: &str = "id, account_id, external_id, name, email, phone, custom_attributes, device, created_at, updated_at, \
    identity_verified";

/// Inserts a contact.
pub async fn insert(conn: &mut PgConnection, row: &ContactRow) -> Result<ContactRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO contacts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), now(), $9) RETURNING {COLUMNS}"
    ))
    .bind(row.id)
    .bind(&row.account_id)
    .bind(&row.external_id)
    .bind(&row.name)
    .bind(&row.email)
    .bind(&row.phone)
    .bind(&row.custom_attributes)
    .bind(&row.device)
    .bind(row.identity_verified)
    .fetch_one(conn)
    .await
}

/// Writes the mutable fields back.
pub async fn update(conn: &mut PgConnection, row: &ContactRow) -> Result<ContactRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE contacts SET external_id = $3, name = $4, email = $5, phone = $6, custom_attributes = $7, device = $8,
         updated_at = now() WHERE account_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(&row.account_id)
    .bind(row.id)
    .bind(&row.external_id)
    .bind(&row.name)
    .bind(&row.email)
    .bind(&row.phone)
    .bind(&row.custom_attributes)
    .bind(&row.device)
    .fetch_one(conn)
    .await
}

/// One contact, locked for update.
pub async fn get(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
) -> Result<Option<ContactRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM contacts WHERE account_id = $1 AND id = $2 FOR UPDATE"
    ))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The verified contact matching `external_id`, else `email` (case-insensitive),
/// locked. Pass an empty `email` to match by external id only.
pub async fn find(
    conn: &mut PgConnection,
    account: &str,
    external_id: &str,
    email: &str,
) -> Result<Option<ContactRow>, sqlx::Error> {
    if !external_id.is_empty() {
        let found = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM contacts WHERE account_id = $1 AND external_id = $2 AND identity_verified
             FOR UPDATE"
        ))
        .bind(account)
        .bind(external_id)
        .fetch_optional(&mut *conn)
        .await?;
        if found.is_some() {
            return Ok(found);
        }
    }
    if !email.is_empty() {
        return sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM contacts WHERE account_id = $1 AND lower(email) = lower($2) AND identity_verified
             ORDER BY id LIMIT 1 FOR UPDATE"
        ))
        .bind(account)
        .bind(email)
        .fetch_optional(conn)
        .await;
    }
    Ok(None)
}
