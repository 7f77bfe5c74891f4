//! Closing time (issue 15): a supervisor checks everyone out of a venue
//! (`POST /api/admin/venues/{id}/checkout`). Each ticket still inside today
//! gets the exits that bring its own count to zero, recorded as passages
//! (reason `CLOSING`) like any other fact, and its holder is marked as left;
//! the venue's occupancy is then 0. A ticket whose count is zero or below
//! (out already, or an exit without an entry: a conflict) gets none, so a
//! checkout never turns one ticket's missing entry into another's exit.
//!
//! | ticket's entries − exits today | exits recorded |
//! |--------------------------------|----------------|
//! | 1 (inside)                     | 1              |
//! | 2 (a double entry, inside)     | 2              |
//! | 0 (left)                       | 0              |
//! | −1 (exit without entry)        | 0              |

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{TicketCode, VenueId};

/// The reason a checkout's exits carry (`passages.reason`).
pub const CLOSING_REASON: &str = "CLOSING";

/// The exits to record at closing: `(ticket, how many)` for each ticket
/// inside, from each ticket's entries − exits today.
pub fn closing_exits(net: &[(TicketCode, i64)]) -> Vec<(TicketCode, i64)> {
    net.iter()
        .filter(|(_, n)| *n > 0)
        .map(|(code, n)| (code.clone(), *n))
        .collect()
}

/// What a checkout did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Checkout {
    pub venue_id: VenueId,
    /// People recorded as leaving (exits written).
    pub checked_out: i64,
    /// The venue's occupancy after the checkout (0 unless a gate's entry
    /// arrives with an earlier time than the checkout since).
    pub inside: i64,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_table() {
        let t = |c: &str| TicketCode::parse(c).unwrap();
        // (ticket's net today) → exits recorded
        let cases = [(1, 1), (2, 2), (0, 0), (-1, 0)];
        for (net, want) in cases {
            let got = closing_exits(&[(t("C-1"), net)]);
            let n = got.first().map_or(0, |(_, n)| *n);
            assert_eq!(n, want, "net {net}");
        }
        let mixed = closing_exits(&[(t("A"), 1), (t("B"), -1), (t("C"), 0), (t("D"), 1)]);
        assert_eq!(mixed, vec![(t("A"), 1), (t("D"), 1)]);
    }
}
