//! API tokens and customer sessions: secrets shown once, stored as hashes,
//! looked up on every request by whichever instance gets it.

use chrono::{DateTime, Utc};

use crate::domain::{DomainError, OperatorId, Orq, Role, TicketCode, VenueId};
use crate::operators::require_active_operator;
use crate::venues::require_venue;
use crate::{corrupt, db, ts, PgStore};
use entrada_store::{
    console_role, hash_token, random_token, stale_link, Principal, Result, TokenStore,
    CONSOLE_LINK_TTL, CONSOLE_SESSION_TTL,
};

impl TokenStore for PgStore {
    fn create_token(
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
        let id: i64 = self.write(|tx| {
            if let Some(venue) = venue_id {
                require_venue(tx, orq, venue)?;
            }
            // A staff token's user id is an operator of the org.
            if let (true, Some(id)) = (role != Role::Customer, user_id) {
                require_active_operator(tx, orq, OperatorId(id), "user_id")?;
            }
            Ok(tx
                .query_one(
                    "INSERT INTO api_tokens (token_hash, orq, role, user_id, venue_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    &[&hash_token(&token), &orq.0, &role.as_str(), &user_id, &venue_id.map(|v| v.0), &ts(now)],
                )
                .map_err(db)?
                .get(0))
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

    /// This instance's cache only (`token_cache.rs`: a read younger than its
    /// TTL found the token valid, not revoked through this instance since,
    /// not expired at `now`): a hash and a short lock, no database call, so
    /// the server asks it without a hop to the blocking pool.
    fn cached_principal(&self, token: &str, now: DateTime<Utc>) -> Option<Principal> {
        self.tokens.get(&hash_token(token.trim()), now)
    }

    /// Answered from this instance's cache when a read younger than its
    /// TTL found the token valid (`token_cache.rs`); else one statement.
    fn principal_for_token(&self, token: &str, now: DateTime<Utc>) -> Result<Option<Principal>> {
        let hash = hash_token(token.trim());
        if let Some(principal) = self.tokens.get(&hash, now) {
            return Ok(Some(principal));
        }
        let ticket = self.tokens.before_read();
        // One statement on its own: this runs before every staff request
        // that the cache does not answer.
        let Some(r) = self.read_row(
            "SELECT id, orq, role, user_id, venue_id, ticket_code, expires_at FROM api_tokens \
             WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
            &[&hash, &ts(now)],
        )?
        else {
            return Ok(None);
        };
        let principal = Principal {
            token_id: r.get(0),
            orq: Orq(r.get(1)),
            role: Role::parse(r.get(2)).map_err(|e| corrupt("token role", e))?,
            user_id: r.get(3),
            venue_id: r.get::<_, Option<i64>>(4).map(VenueId),
            ticket_code: r
                .get::<_, Option<&str>>(5)
                .map(TicketCode::parse)
                .transpose()
                .map_err(|e| corrupt("token ticket code", e))?,
        };
        self.tokens.put(
            ticket,
            hash,
            principal.clone(),
            r.get::<_, Option<DateTime<Utc>>>(6),
        );
        Ok(Some(principal))
    }

    fn revoke_token_id(&self, token_id: i64, now: DateTime<Utc>) -> Result<bool> {
        self.revoking(|tx| {
            Ok(tx
                .execute(
                    "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                    &[&ts(now), &token_id],
                )
                .map_err(db)?
                == 1)
        })
    }

    /// A wrong code and a wrong e-mail answer the same NOT_FOUND.
    fn customer_session(
        &self,
        code: &TicketCode,
        email: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, Principal, DateTime<Utc>)> {
        let email = crate::domain::reservation::validate_email(email)?;
        let token = random_token()?;
        let expires_at = now + chrono::Duration::hours(12);
        let principal = self.write(|tx| {
            let row = tx
                .query_opt(
                    "SELECT orq, user_id, coalesce(lower(purchase_email) = lower($2), false) \
                     OR coalesce(lower(customer_email) = lower($2), false) FROM tickets WHERE ticket_code = $1",
                    &[&code.as_str(), &email],
                )
                .map_err(db)?;
            let Some((orq, user_id, true)) = row.map(|r| (Orq(r.get(0)), r.get::<_, Option<i64>>(1), r.get(2))) else {
                return Err(DomainError::NotFound { entity: "ticket" }.into());
            };
            let id: i64 = tx
                .query_one(
                    "INSERT INTO api_tokens (token_hash, orq, role, user_id, ticket_code, created_at, expires_at) \
                     VALUES ($1, $2, 'customer', $3, $4, $5, $6) RETURNING id",
                    &[&hash_token(&token), &orq.0, &user_id, &code.as_str(), &ts(now), &ts(expires_at)],
                )
                .map_err(db)?
                .get(0);
            Ok(Principal {
                token_id: id,
                orq,
                role: Role::Customer,
                user_id,
                venue_id: None,
                ticket_code: Some(code.clone()),
            })
        })?;
        Ok((token, principal, expires_at))
    }
    fn create_console_link(
        &self,
        orq: Orq,
        operator: Option<OperatorId>,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>)> {
        let link = random_token()?;
        let expires_at = now + CONSOLE_LINK_TTL;
        self.write(|tx| {
            let role = match operator {
                Some(id) => console_role(Some(require_active_operator(tx, orq, id, "operator")?.role))?,
                None => console_role(None)?,
            };
            tx.execute(
                "INSERT INTO console_links (link_hash, orq, role, operator_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&hash_token(&link), &orq.0, &role.as_str(), &operator.map(|o| o.0), &ts(now), &ts(expires_at)],
            )
            .map_err(db)?;
            Ok(())
        })?;
        Ok((link, expires_at))
    }

    /// Once: the row is locked, so two racers cannot both open a session.
    fn redeem_console_link(
        &self,
        link: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, Principal, DateTime<Utc>)> {
        let hash = hash_token(link.trim());
        let token = random_token()?;
        let expires_at = now + CONSOLE_SESSION_TTL;
        let principal = self.write(|tx| {
            let Some(r) = tx
                .query_opt(
                    "SELECT id, orq, role, operator_id FROM console_links \
                     WHERE link_hash = $1 AND used_at IS NULL AND expires_at > $2 FOR UPDATE",
                    &[&hash, &ts(now)],
                )
                .map_err(db)?
            else {
                return Err(stale_link());
            };
            let link_id: i64 = r.get(0);
            let orq = Orq(r.get(1));
            let role = Role::parse(r.get(2)).map_err(|e| corrupt("console link role", e))?;
            let operator: Option<i64> = r.get(3);
            let token_id: i64 = tx
                .query_one(
                    "INSERT INTO api_tokens (token_hash, orq, role, user_id, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    &[&hash_token(&token), &orq.0, &role.as_str(), &operator, &ts(now), &ts(expires_at)],
                )
                .map_err(db)?
                .get(0);
            tx.execute(
                "UPDATE console_links SET used_at = $1, session_token_id = $2 WHERE id = $3",
                &[&ts(now), &token_id, &link_id],
            )
            .map_err(db)?;
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
}
