//! API tokens: created with a random secret that is shown once and stored
//! only as its SHA-256 hash; looked up per request; revocable.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

use super::codec::ts;
use super::column::{RowExt, Sql};
use super::tickets::CustomerScope;
use super::{Result, Store, StoreError};
use crate::domain::{DomainError, OperatorId, Orq, Role, TicketCode, VenueId};

/// Who a request speaks for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Principal {
    pub token_id: i64,
    pub orq: Orq,
    pub role: Role,
    /// The customer's user id, or the operator's id for operator roles.
    pub user_id: Option<i64>,
    /// The venue a gate token is bound to.
    pub venue_id: Option<VenueId>,
    /// A customer session opened with a ticket code and e-mail sees only this ticket.
    pub ticket_code: Option<TicketCode>,
}

impl Principal {
    pub fn operator_id(&self) -> Option<OperatorId> {
        self.user_id.map(OperatorId)
    }

    /// The tickets a customer principal may see: a session's one ticket
    /// (even when that ticket belongs to a user), else the user's tickets;
    /// `None` for staff and for a customer token that names neither.
    pub fn customer_scope(&self) -> Option<CustomerScope> {
        if self.role != Role::Customer {
            return None;
        }
        match (&self.ticket_code, self.user_id) {
            (Some(code), _) => Some(CustomerScope::Ticket(code.clone())),
            (None, Some(user)) => Some(CustomerScope::User(user)),
            (None, None) => None,
        }
    }
}

pub const TOKEN_PREFIX: &str = "ent_";

pub fn hash_token(token: &str) -> String {
    // Hex by hand: this runs on every staff request, where a `format!` per
    // byte made 32 small strings each time.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(2 * digest.len());
    for b in digest {
        hex.push(HEX[usize::from(b >> 4)] as char);
        hex.push(HEX[usize::from(b & 0xf)] as char);
    }
    hex
}

/// 256 random bits as hex.
pub(crate) fn random_hex() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Randomness(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A new token's secret: the prefix and 256 random bits (every engine
/// stores only its `hash_token`).
pub fn random_token() -> Result<String> {
    Ok(format!("{TOKEN_PREFIX}{}", random_hex()?))
}

/// How long a console sign-in link waits to be opened.
pub const CONSOLE_LINK_TTL: chrono::Duration = chrono::Duration::minutes(15);
/// How long a console session (opened by a link) lasts.
pub const CONSOLE_SESSION_TTL: chrono::Duration = chrono::Duration::hours(8);

/// The role a console link signs in as: the operator's own when it names
/// one (admins and supervisors only: the console is not a gate), else admin.
pub fn console_role(operator_role: Option<Role>) -> std::result::Result<Role, DomainError> {
    match operator_role {
        None | Some(Role::Admin) => Ok(Role::Admin),
        Some(Role::Supervisor) => Ok(Role::Supervisor),
        Some(_) => Err(DomainError::invalid(
            "operator",
            "only admins and supervisors sign in to the console",
        )),
    }
}

/// The error of an unknown, used or expired sign-in link (one answer for all three).
pub fn stale_link() -> StoreError {
    DomainError::NotFound {
        entity: "sign-in link",
    }
    .into()
}

impl Store {
    /// Creates a token; returns the secret (shown once) and its principal.
    pub fn create_token(
        &self,
        orq: Orq,
        role: Role,
        user_id: Option<i64>,
        venue_id: Option<VenueId>,
        now: DateTime<Utc>,
    ) -> Result<(String, Principal)> {
        if role == Role::Customer && user_id.is_none() {
            return Err(DomainError::invalid("user_id", "a customer token needs --user-id").into());
        }
        let token = random_token()?;
        let id =
            self.write(|tx| {
                if let Some(venue) = venue_id {
                    super::venues::require_venue(tx, orq, venue)?;
                }
                // A staff token's user id is an operator of the org: recorded as verified_by.
                if let (true, Some(id)) = (role != Role::Customer, user_id) {
                    super::staff::require_active_operator(tx, orq, OperatorId(id), "user_id")?;
                }
                tx.execute(
                "INSERT INTO api_tokens (token_hash, orq, role, user_id, venue_id, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![hash_token(&token), Sql(orq), Sql(role), user_id, Sql(venue_id), ts(now)],
            )?;
                Ok(tx.last_insert_rowid())
            })?;
        Ok((
            token,
            Principal {
                token_id: id,
                orq,
                role,
                user_id,
                venue_id,
                ticket_code: None,
            },
        ))
    }

    /// SQLite keeps no token cache (a look-up is a read of the local file):
    /// always `None`, so every look-up goes to `principal_for_token`.
    pub fn cached_principal(&self, _token: &str, _now: DateTime<Utc>) -> Option<Principal> {
        None
    }

    /// The principal of a live token, or `None` for unknown or revoked ones.
    pub fn principal_for_token(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>> {
        let hash = hash_token(token.trim());
        self.read(|tx| {
            Ok(tx
                .prepare_cached(
                    "SELECT id, orq, role, user_id, venue_id, ticket_code FROM api_tokens \
                     WHERE token_hash = ?1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)",
                )?
                .query_row(params![hash, ts(now)], |r| {
                    Ok(Principal {
                        token_id: r.get(0)?,
                        orq: r.col(1)?,
                        role: r.col(2)?,
                        user_id: r.get(3)?,
                        venue_id: r.col(4)?,
                        ticket_code: r.col(5)?,
                    })
                })
                .optional()?)
        })
    }

    /// Opens a customer session for one ticket, proven by its code and the
    /// purchase (or reservation) e-mail. Both a wrong code and a wrong e-mail
    /// answer the same NOT_FOUND, so neither can be probed on its own.
    pub fn customer_session(
        &self,
        code: &TicketCode,
        email: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, Principal, DateTime<Utc>)> {
        let email = crate::domain::reservation::validate_email(email)?;
        let token = random_token()?;
        let expires_at = now + chrono::Duration::hours(12);
        let principal = self.write(|tx| {
            let row: Option<(Orq, Option<i64>, bool)> = tx
                .query_row(
                    "SELECT orq, user_id, coalesce(lower(purchase_email) = lower(?2), 0) \
                     OR coalesce(lower(customer_email) = lower(?2), 0) FROM tickets WHERE ticket_code = ?1",
                    params![Sql(&code), email],
                    |r| Ok((r.col(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((orq, user_id, true)) = row else {
                return Err(DomainError::NotFound { entity: "ticket" }.into());
            };
            tx.execute(
                "INSERT INTO api_tokens (token_hash, orq, role, user_id, ticket_code, created_at, expires_at) \
                 VALUES (?1, ?2, 'customer', ?3, ?4, ?5, ?6)",
                params![hash_token(&token), Sql(orq), user_id, Sql(&code), ts(now), ts(expires_at)],
            )?;
            Ok(Principal {
                token_id: tx.last_insert_rowid(),
                orq,
                role: Role::Customer,
                user_id,
                venue_id: None,
                ticket_code: Some(code.clone()),
            })
        })?;
        Ok((token, principal, expires_at))
    }

    /// A one-time console sign-in link's secret for `orq` (as `operator`,
    /// else as the org's admin) and when it stops working.
    pub fn create_console_link(
        &self,
        orq: Orq,
        operator: Option<OperatorId>,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>)> {
        let link = random_token()?;
        let expires_at = now + CONSOLE_LINK_TTL;
        self.write(|tx| {
            let role = match operator {
                Some(id) => console_role(Some(super::staff::require_active_operator(tx, orq, id, "operator")?.role))?,
                None => console_role(None)?,
            };
            tx.execute(
                "INSERT INTO console_links (link_hash, orq, role, operator_id, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![hash_token(&link), Sql(orq), Sql(role), operator.map(|o| o.0), ts(now), ts(expires_at)],
            )?;
            Ok(())
        })?;
        Ok((link, expires_at))
    }

    /// Opens a console session with a link, once: the session's secret, its
    /// principal and expiry. A used, expired or unknown link is NOT_FOUND.
    pub fn redeem_console_link(
        &self,
        link: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, Principal, DateTime<Utc>)> {
        let hash = hash_token(link.trim());
        let token = random_token()?;
        let expires_at = now + CONSOLE_SESSION_TTL;
        let principal =
            self.write(|tx| {
                let row: Option<(i64, Orq, Role, Option<i64>)> = tx
                    .query_row(
                        "SELECT id, orq, role, operator_id FROM console_links \
                     WHERE link_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                        params![hash, ts(now)],
                        |r| Ok((r.get(0)?, r.col(1)?, r.col(2)?, r.get(3)?)),
                    )
                    .optional()?;
                let Some((link_id, orq, role, operator)) = row else {
                    return Err(stale_link());
                };
                tx.execute(
                "INSERT INTO api_tokens (token_hash, orq, role, user_id, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![hash_token(&token), Sql(orq), Sql(role), operator, ts(now), ts(expires_at)],
            )?;
                let token_id = tx.last_insert_rowid();
                tx.execute(
                    "UPDATE console_links SET used_at = ?1, session_token_id = ?2 WHERE id = ?3",
                    params![ts(now), token_id, link_id],
                )?;
                Ok(Principal {
                    token_id,
                    orq,
                    role,
                    user_id: operator,
                    venue_id: None,
                    ticket_code: None,
                })
            })?;
        Ok((token, principal, expires_at))
    }

    /// Revokes the token a request was made with (a customer signing out);
    /// false when it was already revoked.
    pub fn revoke_token_id(&self, token_id: i64, now: DateTime<Utc>) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE api_tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                params![ts(now), token_id],
            )? == 1)
        })
    }

    /// Revokes a token given its secret; false when no live token matched.
    pub fn revoke_token(&self, token: &str, now: DateTime<Utc>) -> Result<bool> {
        let hash = hash_token(token.trim());
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE api_tokens SET revoked_at = ?1 WHERE token_hash = ?2 AND revoked_at IS NULL",
                params![ts(now), hash],
            )? == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_hash_is_the_lowercase_hex_sha256_stored_rows_hold() {
        // Stored `token_hash`es were written by the `format!`-per-byte
        // version: the hand-made hex must give the same text (FIPS 180-2's
        // "abc" vector, and a byte with a leading zero nibble).
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let old = |t: &str| -> String {
            Sha256::digest(t.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        for t in ["", "x", "Bearer-like token 0123456789", "ñ"] {
            assert_eq!(hash_token(t), old(t));
        }
    }

    #[test]
    fn sqlite_answers_no_token_from_memory() {
        // No cache on SQLite: the server always takes the look-up.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("t.db")).unwrap();
        let now = Utc::now();
        let (token, p) = store
            .create_token(Orq(1), Role::Admin, None, None, now)
            .unwrap();
        assert_eq!(store.principal_for_token(&token, now).unwrap(), Some(p));
        assert_eq!(store.cached_principal(&token, now), None);
    }

    #[test]
    fn tokens_are_random_hashed_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("t.db")).unwrap();
        let now = Utc::now();
        // A staff token's user id must be an operator of the org.
        let err = store
            .create_token(Orq(1), Role::Operator, Some(5), None, now)
            .unwrap_err();
        assert_eq!(err.code(), "NOT_FOUND");
        let op = store
            .add_operator(Orq(1), Role::Operator, "Ana", None, now)
            .unwrap()
            .id
            .0;
        let (a, pa) = store
            .create_token(Orq(1), Role::Operator, Some(op), None, now)
            .unwrap();
        let (b, _) = store
            .create_token(Orq(1), Role::Operator, Some(op), None, now)
            .unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == 68);
        assert_eq!(store.principal_for_token(&a, now).unwrap(), Some(pa));
        assert_eq!(store.principal_for_token("ent_nope", now).unwrap(), None);
        // Only the hash is stored.
        let stored: String = store
            .read(|tx| {
                Ok(
                    tx.query_row("SELECT group_concat(token_hash) FROM api_tokens", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .unwrap();
        assert!(!stored.contains(&a[TOKEN_PREFIX.len()..]));
        assert!(store.revoke_token(&a, now).unwrap());
        assert!(!store.revoke_token(&a, now).unwrap());
        assert_eq!(store.principal_for_token(&a, now).unwrap(), None);
        assert!(store.principal_for_token(&b, now).unwrap().is_some());
        assert_eq!(
            store
                .create_token(Orq(1), Role::Customer, None, None, now)
                .unwrap_err()
                .code(),
            "INVALID_INPUT"
        );
    }
}
