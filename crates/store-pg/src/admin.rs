//! The CLI-only administration calls (`entrada_store::AdminStore`).

use chrono::{DateTime, Utc};

use crate::domain::{DomainError, Operator, OperatorId, Orq, TicketCode};
use crate::operators::require_operator;
use crate::{db, ts, PgStore};
use entrada_store::{hash_pin, hash_token, AdminStore, OperatorStore, Result};

impl AdminStore for PgStore {
    fn revoke_token(&self, token: &str, now: DateTime<Utc>) -> Result<bool> {
        let hash = hash_token(token.trim());
        self.revoking(|tx| {
            Ok(tx
                .execute(
                    "UPDATE api_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
                    &[&ts(now), &hash],
                )
                .map_err(db)?
                == 1)
        })
    }

    fn set_operator_pin(
        &self,
        orq: Orq,
        id: OperatorId,
        pin: &str,
        now: DateTime<Utc>,
    ) -> Result<Operator> {
        let role = self.get_operator(orq, id)?.role;
        let hash = hash_pin(role, pin)?;
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE operators SET pin_hash = $1, updated_at = $2 WHERE id = $3 AND orq = $4 AND role = $5",
                    &[&hash, &ts(now), &id.0, &orq.0, &role.as_str()],
                )
                .map_err(db)?;
            if n == 0 {
                // Its role changed meanwhile: the PIN was validated for another.
                return Err(DomainError::NotFound { entity: "operator" }.into());
            }
            tx.execute(
                "DELETE FROM pin_attempts WHERE orq = $1 AND operator_id = $2",
                &[&orq.0, &id.0],
            )
            .map_err(db)?;
            require_operator(tx, orq, id)
        })
    }

    fn rotate_signing_key(&self, orq: Orq, now: DateTime<Utc>) -> Result<u32> {
        self.rotate_signing_key_in(orq, now)
    }

    fn retire_signing_key(&self, orq: Orq, kid: u32, now: DateTime<Utc>) -> Result<()> {
        self.retire_signing_key_in(orq, kid, now)
    }

    fn revoke_device(&self, orq: Orq, device_id: i64, now: DateTime<Utc>) -> Result<()> {
        self.revoke_device_in(orq, device_id, now)
    }

    fn reissue_code(&self, orq: Orq, code: &TicketCode, now: DateTime<Utc>) -> Result<String> {
        self.reissue_code_in(orq, code, None, now)
    }
}
