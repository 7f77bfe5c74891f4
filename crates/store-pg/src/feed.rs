//! The change feed's log, read in commit order (see `change_log` and
//! `feed_sequence()` in migrations/0001_schema.sql): the half of the sync
//! service `changes_since` that decides which entries a device gets next.

use crate::domain::{Orq, VenueId};
use crate::{db, PgStore};
use entrada_store::Result;

/// One entry of the change log, as a device of a venue receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    pub seq: i64,
    pub entity: String,
    pub entity_id: String,
    pub op: String,
}

impl PgStore {
    /// Numbers the log entries of every transaction that has ended (in its
    /// own short transaction); returns how many it numbered.
    pub fn sequence_feed(&self) -> Result<i64> {
        // READ COMMITTED whatever the server's default: feed_sequence()
        // relies on each of its statements seeing what committed before it.
        self.write(|tx| {
            Ok(tx
                .query_one("SELECT feed_sequence()", &[])
                .map_err(db)?
                .get(0))
        })
    }

    /// The entries after `cursor` that a device of `venue` receives (the
    /// org-wide ones and its venue's), oldest first. A cursor a device held
    /// is never overtaken: an entry that commits later gets a higher seq.
    pub fn feed_entries(
        &self,
        orq: Orq,
        venue: VenueId,
        cursor: i64,
        limit: u32,
    ) -> Result<Vec<FeedEntry>> {
        self.sequence_feed()?;
        let limit = i64::from(limit.clamp(1, 5000));
        self.read(|tx| {
            // Two index ranges (org-wide, this venue), merged in seq order.
            let rows = tx
                .query(
                    "SELECT seq, entity, entity_id, op FROM ( \
                       (SELECT seq, entity, entity_id, op FROM change_log \
                        WHERE orq = $1 AND scope = 0 AND seq > $2 ORDER BY seq LIMIT $3) \
                       UNION ALL \
                       (SELECT seq, entity, entity_id, op FROM change_log \
                        WHERE orq = $1 AND scope = $4 AND seq > $2 ORDER BY seq LIMIT $3) \
                     ) page ORDER BY seq LIMIT $3",
                    &[&orq.0, &cursor, &limit, &venue.0],
                )
                .map_err(db)?;
            Ok(rows
                .iter()
                .map(|r| FeedEntry {
                    seq: r.get(0),
                    entity: r.get(1),
                    entity_id: r.get(2),
                    op: r.get(3),
                })
                .collect())
        })
    }
}
