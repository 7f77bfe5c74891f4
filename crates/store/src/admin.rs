//! The CLI's administration calls that the server does not make (tokens
//! revoked by their secret, PINs set, keys rotated and retired, devices
//! revoked, codes re-issued), as one trait every server engine implements, so
//! `entrada venue|token|operator|device|key|ticket --db <file or URL>` speak
//! either engine. Kept apart from `engine`'s server groups.

use chrono::{DateTime, Utc};

use crate::domain::{Operator, OperatorId, Orq, TicketCode};
use crate::{Result, ServerStore, Store};

/// CLI-only administration.
pub trait AdminStore: Send + Sync {
    /// Revokes a live API token given its secret; `false` if none matched.
    fn revoke_token(&self, token: &str, now: DateTime<Utc>) -> Result<bool>;
    /// Sets (or replaces) an operator's PIN and clears its lockout.
    fn set_operator_pin(
        &self,
        orq: Orq,
        id: OperatorId,
        pin: &str,
        now: DateTime<Utc>,
    ) -> Result<Operator>;
    /// A new signing key signs from now on; returns its id.
    fn rotate_signing_key(&self, orq: Orq, now: DateTime<Utc>) -> Result<u32>;
    /// Codes signed with `kid` are refused from now on.
    fn retire_signing_key(&self, orq: Orq, kid: u32, now: DateTime<Utc>) -> Result<()>;
    /// Revokes a gate device's token.
    fn revoke_device(&self, orq: Orq, device_id: i64, now: DateTime<Utc>) -> Result<()>;
    /// Re-issues a ticket's code (every code printed before is revoked).
    fn reissue_code(&self, orq: Orq, code: &TicketCode, now: DateTime<Utc>) -> Result<String>;
}

impl AdminStore for Store {
    fn revoke_token(&self, token: &str, now: DateTime<Utc>) -> Result<bool> {
        Store::revoke_token(self, token, now)
    }
    fn set_operator_pin(
        &self,
        orq: Orq,
        id: OperatorId,
        pin: &str,
        now: DateTime<Utc>,
    ) -> Result<Operator> {
        Store::set_operator_pin(self, orq, id, pin, now)
    }
    fn rotate_signing_key(&self, orq: Orq, now: DateTime<Utc>) -> Result<u32> {
        Store::rotate_signing_key(self, orq, now)
    }
    fn retire_signing_key(&self, orq: Orq, kid: u32, now: DateTime<Utc>) -> Result<()> {
        Store::retire_signing_key(self, orq, kid, now)
    }
    fn revoke_device(&self, orq: Orq, device_id: i64, now: DateTime<Utc>) -> Result<()> {
        Store::revoke_device(self, orq, device_id, now)
    }
    fn reissue_code(&self, orq: Orq, code: &TicketCode, now: DateTime<Utc>) -> Result<String> {
        Store::reissue_code(self, orq, code, now)
    }
}

/// What the CLI's administration commands need: the server's calls and the
/// CLI-only ones.
pub trait CliStore: ServerStore + AdminStore {}
impl<T: ServerStore + AdminStore> CliStore for T {}
