//! JWT (HS256) auth: minting, verification, roles, and a tonic interceptor that puts
//! verified [`Claims`] into request extensions.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use helpdesk_proto::common::v1::{Actor, ActorKind};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tonic::{Request, Status};

type HmacSha256 = Hmac<Sha256>;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything in the account.
    Admin,
    /// Agents' work plus queue management.
    Supervisor,
    /// Works conversations.
    Agent,
    /// A customer; only their own contact and conversations.
    Visitor,
    /// A server-side integration.
    Integration,
}

impl Role {
    /// Staff and integrations (everyone but visitors).
    pub fn is_staff(self) -> bool {
        !matches!(self, Role::Visitor)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
            Role::Visitor => "visitor",
            Role::Integration => "integration",
        })
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "supervisor" => Ok(Role::Supervisor),
            "agent" => Ok(Role::Agent),
            "visitor" => Ok(Role::Visitor),
            "integration" => Ok(Role::Integration),
            other => Err(format!(
                "unknown role {other:?} (admin, supervisor, agent, visitor, integration)"
            )),
        }
    }
}

/// Verified token contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: user id, contact id (visitors) or integration id.
    pub sub: String,
    /// Account (tenant) id.
    pub acct: String,
    /// Role.
    pub role: Role,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expires at (unix seconds).
    pub exp: i64,
}

impl Claims {
    /// Claims valid for `ttl` from now.
    pub fn new(account: &str, subject: &str, role: Role, ttl: chrono::Duration) -> Self {
        let now = chrono::Utc::now().timestamp();
        Self {
            sub: subject.into(),
            acct: account.into(),
            role,
            iat: now,
            exp: now + ttl.num_seconds(),
        }
    }

    /// PERMISSION_DENIED unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Status> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "role {} may not do this",
                self.role
            )))
        }
    }

    /// PERMISSION_DENIED for visitors.
    pub fn require_staff(&self) -> Result<(), Status> {
        if self.role.is_staff() {
            Ok(())
        } else {
            Err(Status::permission_denied("visitors may not do this"))
        }
    }

    /// The caller as an event actor.
    pub fn actor(&self) -> Actor {
        let kind = match self.role {
            Role::Visitor => ActorKind::Contact,
            Role::Integration => ActorKind::Integration,
            Role::Admin | Role::Supervisor | Role::Agent => ActorKind::Agent,
        };
        Actor {
            kind: kind as i32,
            id: self.sub.clone(),
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not three base64url parts, bad JSON, or wrong algorithm.
    #[error("malformed token")]
    Malformed,
    /// Signature does not match.
    #[error("bad signature")]
    BadSignature,
    /// Past `exp`.
    #[error("token expired")]
    Expired,
    /// Account id is not a valid token.
    #[error("invalid account in token")]
    BadAccount,
}

/// Signs and verifies HS256 tokens with one secret.
#[derive(Clone)]
pub struct JwtKeys {
    secret: Arc<Vec<u8>>,
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

impl JwtKeys {
    /// Keys from the configured secret.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            secret: Arc::new(secret.to_vec()),
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length.
        HmacSha256::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("hmac takes any key length"))
    }

    /// Encodes and signs `claims`.
    pub fn mint(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(HEADER);
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{header}.{body}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    /// Checks signature (constant time), algorithm and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let mut parts = token.split('.');
        let (Some(h), Some(b), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(h)
                .map_err(|_| AuthError::Malformed)?,
        )
        .map_err(|_| AuthError::Malformed)?;
        if header.get("alg").and_then(|v| v.as_str()) != Some("HS256") {
            return Err(AuthError::Malformed);
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| AuthError::Malformed)?;
        let mut mac = self.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(b.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| AuthError::BadSignature)?;
        let claims: Claims = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(b)
                .map_err(|_| AuthError::Malformed)?,
        )
        .map_err(|_| AuthError::Malformed)?;
        if claims.exp <= chrono::Utc::now().timestamp() {
            return Err(AuthError::Expired);
        }
        if !crate::bus::is_token(&claims.acct) {
            return Err(AuthError::BadAccount);
        }
        Ok(claims)
    }
}

/// Verifies `authorization: Bearer …` when present and stores the [`Claims`] in the
/// request. A present but invalid token is UNAUTHENTICATED here; an absent one is
/// left for the handler ([`claims`]), since a visitor starting a chat has none.
#[derive(Clone)]
pub struct AuthInterceptor {
    keys: JwtKeys,
}

impl AuthInterceptor {
    /// Interceptor using `keys`.
    pub fn new(keys: JwtKeys) -> Self {
        Self { keys }
    }
}

/// Longest bearer token accepted (the platform's own are a few hundred bytes).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let Some(value) = request.metadata().get("authorization") else {
            return Ok(request);
        };
        let value = value
            .to_str()
            .map_err(|_| Status::unauthenticated("authorization header is not ASCII"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization must be 'Bearer <token>'"))?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Status::unauthenticated(format!(
                "bearer token over {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let claims = self
            .keys
            .verify(token.trim())
            .map_err(|e| Status::unauthenticated(e.to_string()))?;
        request.extensions_mut().insert(claims);
        Ok(request)
    }
}

/// The caller's verified claims, or UNAUTHENTICATED.
pub fn claims<T>(request: &Request<T>) -> Result<Claims, Status> {
    request
        .extensions()
        .get::<Claims>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("missing bearer token"))
}

/// An authenticated caller: its claims and, for a visitor, the contact it is.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Verified claims.
    pub claims: Claims,
    /// The visitor's own contact (`None` for staff and integrations).
    pub contact: Option<uuid::Uuid>,
    /// The client's end of the connection the request came on (its HTTP/2
    /// connection), when known.
    pub connection: Option<std::net::SocketAddr>,
    /// For a command acting for someone else (an automation rule): the origin its
    /// changes continue.
    pub via: Option<crate::event::Origin>,
}

impl Caller {
    /// Checks that a visitor token names a contact.
    pub fn new(claims: Claims) -> Result<Self, Status> {
        let contact = match claims.role {
            Role::Visitor => Some(
                claims
                    .sub
                    .parse::<uuid::Uuid>()
                    .map_err(|_| Status::unauthenticated("visitor token has no contact"))?,
            ),
            _ => None,
        };
        Ok(Self {
            claims,
            contact,
            connection: None,
            via: None,
        })
    }

    /// The caller of `request`, or UNAUTHENTICATED.
    pub fn of<T>(request: &Request<T>) -> Result<Self, Status> {
        let mut caller = Self::new(claims(request)?)?;
        caller.connection = request.remote_addr();
        Ok(caller)
    }

    /// The caller's account.
    pub fn account(&self) -> &str {
        &self.claims.acct
    }

    /// True for a visitor (a customer in the widget).
    pub fn is_visitor(&self) -> bool {
        self.claims.role == Role::Visitor
    }

    /// The origin of the changes this caller's request makes.
    pub fn origin(&self) -> crate::event::Origin {
        match &self.via {
            Some(origin) => origin.clone(),
            None => crate::event::Origin::request(self.account(), self.claims.actor()),
        }
    }

    /// Who acts: the origin's actor for a command, else the token's subject.
    pub fn actor(&self) -> Actor {
        match &self.via {
            Some(origin) => origin.actor.clone(),
            None => self.claims.actor(),
        }
    }

    /// A caller with an admin's rights in `origin`'s account, acting as `origin`'s
    /// actor and continuing its chain: how a service carries out a command an
    /// automation rule sent.
    pub fn acting_for(origin: crate::event::Origin) -> Self {
        let claims = Claims::new(
            &origin.account,
            &origin.actor.id,
            Role::Admin,
            chrono::Duration::minutes(5),
        );
        Self {
            claims,
            contact: None,
            connection: None,
            via: Some(origin),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let claims = Claims::new("acme", "u1", Role::Agent, chrono::Duration::hours(1));
        let token = keys().mint(&claims);
        assert_eq!(keys().verify(&token), Ok(claims));
        let other = JwtKeys::new(b"another-secret-another-secret-xx");
        assert_eq!(other.verify(&token), Err(AuthError::BadSignature));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD
            .encode(r#"{"sub":"u1","acct":"acme","role":"admin","iat":0,"exp":9999999999}"#);
        parts[1] = &forged;
        assert_eq!(
            keys().verify(&parts.join(".")),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn rejects_expired_and_alg_none() {
        let claims = Claims::new("acme", "u1", Role::Agent, chrono::Duration::seconds(-5));
        assert_eq!(
            keys().verify(&keys().mint(&claims)),
            Err(AuthError::Expired)
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD
                .encode(r#"{"sub":"u1","acct":"acme","role":"admin","iat":0,"exp":9999999999}"#)
        );
        assert_eq!(keys().verify(&none), Err(AuthError::Malformed));
    }
}
