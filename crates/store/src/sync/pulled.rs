//! A change page as a gate reads it off the wire: the protocol's
//! [`ChangePage`] layout, but each row's fields kept as a short list of
//! (synced column, value) instead of a `serde_json::Value` map. A first
//! sync parses 200,000 rows and more: a map per row (a key `String` and a
//! B-tree insert per field, dropped after the apply) was about a seventh of
//! the gate's CPU (issue 13). The same JSON text reads as either type; a
//! [`ChangePage`] converts with [`PulledPage::from`], and both apply alike
//! (test `a_pulled_page_reads_as_the_protocols_page`).

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::feed::ENTITIES;
use crate::domain::sync::protocol::ChangePage;
use crate::StoreError;

/// One change page from the server, as [`ChangePage`] (same fields, same
/// JSON).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PulledPage {
    pub changes: Vec<PulledChange>,
    pub next_cursor: i64,
    pub has_more: bool,
    pub remaining: i64,
    pub server_time: DateTime<Utc>,
    #[serde(default)]
    pub reset: bool,
}

/// One row change, as [`crate::domain::sync::protocol::Change`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PulledChange {
    pub seq: i64,
    /// The synced tables' names borrow a constant; another name (a newer
    /// server's table) is kept, and skipped by the apply.
    #[serde(deserialize_with = "known_or_owned")]
    pub entity: Cow<'static, str>,
    pub entity_id: String,
    #[serde(deserialize_with = "known_or_owned")]
    pub op: Cow<'static, str>,
    /// `null` or absent for a delete; otherwise an object (anything else
    /// is a malformed page).
    #[serde(default)]
    pub row: Option<PulledRow>,
}

/// A row's fields that name a synced column (of any synced table), in the
/// order received; fields no synced table has are skipped, as the apply
/// never read them. A field given twice counts once, its last value (as a
/// JSON object read into a map).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PulledRow(Vec<(u16, Cell)>);

/// One field's value, as the apply binds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    /// Integers, and `true`/`false` as 1/0.
    Integer(i64),
    /// Numbers with a fraction or an exponent, and integers above `i64::MAX`.
    Real(f64),
    Text(String),
    /// An array or object, as compact JSON text (what `Value::to_string`
    /// writes: a TEXT column holding JSON, e.g. `entitlements` or `facts`).
    Json(String),
}

/// Every synced column's name, sorted (a field's id is its place here), and
/// for each entity of [`ENTITIES`], each id's column position in it.
struct Columns {
    names: Vec<&'static str>,
    positions: Vec<Vec<Option<usize>>>,
}

static COLUMNS: LazyLock<Columns> = LazyLock::new(|| {
    let mut names: Vec<&'static str> = ENTITIES
        .iter()
        .flat_map(|e| e.columns.iter().copied())
        .collect();
    names.sort_unstable();
    names.dedup();
    let positions = ENTITIES
        .iter()
        .map(|e| {
            names
                .iter()
                .map(|n| e.columns.iter().position(|c| c == n))
                .collect()
        })
        .collect();
    Columns { names, positions }
});

fn column_id(name: &str) -> Option<u16> {
    COLUMNS.names.binary_search(&name).ok().map(|i| i as u16)
}

/// The longest piece of a server's text (a table, an id, an op) a
/// [`StoreError::RefusedPage`] repeats: the message is shown and stored,
/// the text may be megabytes.
const QUOTED_CHARS: usize = 64;

fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

impl PulledPage {
    /// Refuses the page ([`StoreError::RefusedPage`], naming the first
    /// such change) if a change of a synced table is neither an upsert with
    /// a row nor a delete: an op this gate does not know (a newer server's,
    /// a server's bug), an upsert whose row is `null` or absent, or one
    /// whose row's key is missing or is not its `entity_id`; or if the
    /// `entity_id` of a table keyed by an integer is not that integer as
    /// written (`"09"`, `"+9"`, `" 9"`: SQLite reads each as 9, while the
    /// outbox and peer holds compare the text). Applying
    /// it as anything (a delete, as before, or a skip) would leave the
    /// replica other than the server meant, with the cursor past it. A
    /// change of a table this gate does not sync is skipped by the apply
    /// whatever its op, so it is not checked.
    pub fn check(&self) -> Result<(), StoreError> {
        match self.changes.iter().find_map(PulledChange::refusal) {
            Some(refused) => Err(refused),
            None => Ok(()),
        }
    }
}

impl PulledChange {
    /// Why [`PulledPage::check`] refuses this change, if it does.
    pub(super) fn refusal(&self) -> Option<StoreError> {
        let entity = ENTITIES.iter().find(|e| e.table == self.entity)?;
        let reason = match (&*self.op, &self.row) {
            // Before the row's key: a key cell equal to such text passes.
            ("upsert" | "delete", _) if entity.integer_key && !is_integer_text(&self.entity_id) => {
                format!(
                    "an entity_id that is not an integer's text (the {} key)",
                    entity.key
                )
            }
            // The row is written under its own key, while the checks that
            // keep a gate's unacknowledged changes (the outbox, a peer's
            // hold) look at `entity_id`: the two must name one row.
            ("upsert", Some(row)) => match row.get(entity.key) {
                Some(Cell::Text(key)) if *key == self.entity_id => return None,
                Some(Cell::Integer(key)) if key.to_string() == self.entity_id => return None,
                _ => format!("an upsert whose row's {} is not its entity_id", entity.key),
            },
            ("delete", _) => return None,
            ("upsert", None) => "an upsert without a row".to_owned(),
            (op, _) => format!("unknown op {:?}", quoted(op)),
        };
        Some(StoreError::RefusedPage {
            seq: self.seq,
            entity: quoted(&self.entity),
            entity_id: quoted(&self.entity_id),
            reason,
        })
    }
}

/// Whether `text` is an i64 as Rust and SQLite write it: an optional `-`,
/// digits without a leading zero (but "0"), in range. One text per integer,
/// so an `entity_id` compares as the row's key does.
fn is_integer_text(text: &str) -> bool {
    text.parse::<i64>().is_ok_and(|n| n.to_string() == text)
}

impl PulledRow {
    /// The values of entity `entity` (its index in [`ENTITIES`]) in its
    /// columns' order; a column the row lacks is `None`.
    pub(super) fn cells(&self, entity: usize) -> Vec<Option<&Cell>> {
        let positions = &COLUMNS.positions[entity];
        let mut cells = vec![None; ENTITIES[entity].columns.len()];
        for (id, cell) in &self.0 {
            if let Some(p) = positions[usize::from(*id)] {
                cells[p] = Some(cell);
            }
        }
        cells
    }

    /// The field `name`'s last value, if the row has it.
    pub fn get(&self, name: &str) -> Option<&Cell> {
        let id = column_id(name)?;
        self.0.iter().rev().find(|(i, _)| *i == id).map(|(_, c)| c)
    }
}

impl Cell {
    fn from_value(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Cell::Null,
            serde_json::Value::Bool(b) => Cell::Integer(i64::from(*b)),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Cell::Integer(i),
                None => n.as_f64().map_or(Cell::Null, Cell::Real),
            },
            serde_json::Value::String(s) => Cell::Text(s.clone()),
            other => Cell::Json(other.to_string()),
        }
    }
}

impl From<&ChangePage> for PulledPage {
    fn from(page: &ChangePage) -> Self {
        PulledPage {
            changes: page
                .changes
                .iter()
                .map(|c| PulledChange {
                    seq: c.seq,
                    entity: known(&c.entity),
                    entity_id: c.entity_id.clone(),
                    op: known(&c.op),
                    // A row that is not an object has no fields (what
                    // `Value::get` answered for it).
                    row: c.row.as_ref().map(|row| {
                        PulledRow(
                            row.as_object()
                                .into_iter()
                                .flatten()
                                .filter_map(|(k, v)| Some((column_id(k)?, Cell::from_value(v))))
                                .collect(),
                        )
                    }),
                })
                .collect(),
            next_cursor: page.next_cursor,
            has_more: page.has_more,
            remaining: page.remaining,
            server_time: page.server_time,
            reset: page.reset,
        }
    }
}

/// The words a page repeats on every change (entity names, ops), borrowed
/// from a constant rather than allocated per change.
fn known(word: &str) -> Cow<'static, str> {
    const OPS: [&str; 2] = ["upsert", "delete"];
    match ENTITIES
        .iter()
        .map(|e| e.table)
        .chain(OPS)
        .find(|w| *w == word)
    {
        Some(w) => Cow::Borrowed(w),
        None => Cow::Owned(word.to_owned()),
    }
}

fn known_or_owned<'de, D: Deserializer<'de>>(d: D) -> Result<Cow<'static, str>, D::Error> {
    struct Word;
    impl Visitor<'_> for Word {
        type Value = Cow<'static, str>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(known(v))
        }
    }
    d.deserialize_str(Word)
}

impl<'de> Deserialize<'de> for PulledRow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = PulledRow;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a row object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PulledRow, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(24));
                let mut after = *ROW_START;
                while let Some(key) = map.next_key_seed(FieldName { after })? {
                    match key {
                        Some(id) => {
                            fields.push((id, map.next_value::<Cell>()?));
                            after = usize::from(id);
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(PulledRow(fields))
            }
        }
        d.deserialize_map(Fields)
    }
}

/// [`FOLLOWS`]' slot for "the row's first field".
static ROW_START: LazyLock<usize> = LazyLock::new(|| COLUMNS.names.len());

thread_local! {
    /// For each synced column id (and [`ROW_START`]), the id of the field
    /// that came right after it in the last row read on this thread
    /// (`u16::MAX`: none yet). A server writes every row of a table with
    /// its fields in one order, so the next field's name is nearly always
    /// the one guessed: one comparison instead of a binary search of the
    /// ~70 names (7 % of a gate's first-sync CPU, issue 13). A wrong guess
    /// costs that comparison and falls back to the search.
    static FOLLOWS: std::cell::RefCell<Vec<u16>> =
        std::cell::RefCell::new(vec![u16::MAX; COLUMNS.names.len() + 1]);
}

/// A row's field name, as its column id (`None`: no synced column), read
/// without allocating; `after`: the id of the field before it in the row
/// (or [`ROW_START`]).
struct FieldName {
    after: usize,
}

impl<'de> de::DeserializeSeed<'de> for FieldName {
    type Value = Option<u16>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<u16>, D::Error> {
        struct Name(usize);
        impl Visitor<'_> for Name {
            type Value = Option<u16>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<u16>, E> {
                Ok(FOLLOWS.with(|follows| {
                    let mut follows = follows.borrow_mut();
                    let guess = follows[self.0];
                    // The exact name, so the same id as the search's.
                    if COLUMNS.names.get(usize::from(guess)) == Some(&v) {
                        return Some(guess);
                    }
                    let id = column_id(v)?;
                    follows[self.0] = id;
                    Some(id)
                }))
            }
        }
        d.deserialize_str(Name(self.after))
    }
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Any;
        impl<'de> Visitor<'de> for Any {
            type Value = Cell;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Cell, E> {
                Ok(Cell::Null)
            }
            fn visit_none<E>(self) -> Result<Cell, E> {
                Ok(Cell::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Cell, D::Error> {
                Cell::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Cell, E> {
                Ok(Cell::Integer(i64::from(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Cell, E> {
                Ok(Cell::Integer(v))
            }
            // As `Number::as_i64`, then `as_f64`.
            fn visit_u64<E>(self, v: u64) -> Result<Cell, E> {
                Ok(i64::try_from(v).map_or(Cell::Real(v as f64), Cell::Integer))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Cell, E> {
                Ok(Cell::Real(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Cell, E> {
                Ok(Cell::Text(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Cell, E> {
                Ok(Cell::Text(v))
            }
            // Arrays and objects are rare (a JSON column): read as a value
            // and written back as `Value::to_string` does.
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Cell, A::Error> {
                let value =
                    serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(Cell::Json(value.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Cell, A::Error> {
                let value =
                    serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Cell::Json(value.to_string()))
            }
        }
        d.deserialize_any(Any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the apply reads of a change: its words and, per synced table,
    /// the row's values in that table's column order.
    type Applied = (i64, String, String, String, Option<Vec<Vec<Option<Cell>>>>);

    fn applied(page: &PulledPage) -> Vec<Applied> {
        page.changes
            .iter()
            .map(|c| {
                let row = c.row.as_ref().map(|r| {
                    (0..ENTITIES.len())
                        .map(|i| r.cells(i).into_iter().map(|c| c.cloned()).collect())
                        .collect()
                });
                (
                    c.seq,
                    c.entity.to_string(),
                    c.entity_id.clone(),
                    c.op.to_string(),
                    row,
                )
            })
            .collect()
    }

    /// A page with what a server may send: escapes, non-ASCII, the integer
    /// and float edges, booleans, JSON columns, fields no table has, a
    /// field given twice, a delete without a row, a null row, a table and
    /// an op this gate does not know.
    const PAGE: &str = r#"{"changes":[
        {"entity":"tickets","entity_id":"T-\"1\"","op":"upsert","row":{"activated_at":null,"activation_mode":"immediate","activation_status":"active","code_serial":9223372036854775807,"created_at":"2026-12-01T00:00:00.000000Z","customer_email":"a\u00e9\\b\n@x.es","customer_phone":"+34 6\u0000","entitlements":{"b":[1,2.5,{"z":null,"a":true}],"a":"x"},"expires_at":null,"left_at":null,"order_id":"O-ü","orq":1,"product_id":-0,"reserved_at":"2026-12-01T00:00:00.000000Z","status":"RESERVED","ticket_code":"T-\"1\"","updated_at":"2026-12-01T00:00:00.000000Z","user_id":18446744073709551615,"verified_at":null,"verified_by":1.0,"verified_gate":"Gate 😀","not_a_column":[1,{"x":2}]},"seq":1},
        {"seq":2,"entity":"reservation_slots","entity_id":"s-1","op":"upsert","row":{"id":"s-1","total_capacity":1e3,"booked_count":-12,"status":"OPEN","status":"CLOSED","venue_id":true,"orq":false,"date":"2026-12-02","start_time":"09:00:00","end_time":"10:00:00","created_at":"x","updated_at":"y"}},
        {"seq":3,"entity":"signing_keys","entity_id":"7","op":"upsert","row":{"kid":7,"orq":1,"public_key":"00FF","created_at":"t","retired_at":null}},
        {"seq":4,"entity":"tickets","entity_id":"T-2","op":"delete","row":null},
        {"seq":5,"entity":"tickets","entity_id":"T-3","op":"delete"},
        {"seq":6,"entity":"future_table","entity_id":"f","op":"upsert","row":{"id":1}},
        {"seq":7,"entity":"venues","entity_id":"1","op":"archive","row":{"id":1,"name":"V"}},
        {"seq":8,"entity":"sync_conflicts","entity_id":"2","op":"upsert","row":{"id":2,"facts":[{"k":"v"},[],{}],"kind":"DOUBLE_ENTRY","first_at":0.30000000000000004}}
      ],"next_cursor":8,"has_more":true,"remaining":5,"server_time":"2026-12-01T10:00:00.123Z","extra":1}"#;

    /// Issue 13: the gate's page type reads the server's text as the
    /// protocol's does: every change, and every value the apply binds,
    /// the same.
    #[test]
    fn a_pulled_page_reads_as_the_protocols_page() {
        let wire: PulledPage = serde_json::from_str(PAGE).unwrap();
        let protocol: ChangePage = serde_json::from_str(PAGE).unwrap();
        let converted = PulledPage::from(&protocol);
        assert_eq!(applied(&wire), applied(&converted));
        assert_eq!(
            (
                wire.next_cursor,
                wire.has_more,
                wire.remaining,
                wire.server_time,
                wire.reset
            ),
            (
                protocol.next_cursor,
                protocol.has_more,
                protocol.remaining,
                protocol.server_time,
                protocol.reset
            )
        );
        // Spot checks of what the equality covers.
        let read = applied(&wire);
        let ticket = &read[0].4.as_ref().unwrap()
            [ENTITIES.iter().position(|e| e.table == "tickets").unwrap()];
        let at = |name: &str| {
            ENTITIES
                .iter()
                .find(|e| e.table == "tickets")
                .unwrap()
                .columns
                .iter()
                .position(|c| *c == name)
                .unwrap()
        };
        assert_eq!(
            ticket[at("entitlements")],
            Some(Cell::Json(
                r#"{"a":"x","b":[1,2.5,{"a":true,"z":null}]}"#.into()
            ))
        );
        assert_eq!(
            ticket[at("user_id")],
            Some(Cell::Real(18446744073709551615.0))
        );
        assert_eq!(ticket[at("code_serial")], Some(Cell::Integer(i64::MAX)));
        assert_eq!(ticket[at("verified_by")], Some(Cell::Real(1.0)));
        assert_eq!(
            ticket[at("customer_email")],
            Some(Cell::Text("a\u{e9}\\b\n@x.es".into()))
        );
        let slot = wire.changes[1].row.as_ref().unwrap();
        assert_eq!(
            slot.get("status"),
            Some(&Cell::Text("CLOSED".into())),
            "the last of a field given twice"
        );
        assert_eq!(slot.get("venue_id"), Some(&Cell::Integer(1)));
        assert!(wire.changes[3].row.is_none() && wire.changes[4].row.is_none());
        assert!(matches!(wire.changes[0].entity, Cow::Borrowed("tickets")));
        assert_eq!(wire.changes[5].entity, "future_table");
        assert_eq!(wire.changes[6].op, "archive");
    }

    /// The field names are looked up by guessing each from the row before
    /// (`FOLLOWS`): rows of one table in changing field orders, with
    /// unknown fields and a field given twice between them, still read
    /// every field as the protocol's page does, guesses warm or cold.
    #[test]
    fn rows_in_changing_field_orders_read_alike() {
        let orders = [
            r#"{"ticket_code":"T-1","status":"RESERVED","orq":1,"customer_email":"a@x"}"#,
            r#"{"orq":1,"ticket_code":"T-1","x":[1],"customer_email":"a@x","status":"RESERVED"}"#,
            r#"{"customer_email":"a@x","status":"VERIFIED","status":"RESERVED","ticket_code":"T-1","orq":1}"#,
            r#"{"ticket_code":"T-1","status":"RESERVED","orq":1,"customer_email":"a@x"}"#,
            r#"{"ticket_cod":"T-0","ticket_code":"T-1","orq":1,"status":"RESERVED","customer_email":"a@x","customer_emails":"no"}"#,
        ];
        let changes: Vec<String> = orders
            .iter()
            .cycle()
            .take(3 * orders.len())
            .enumerate()
            .map(|(k, row)| {
                format!(
                    r#"{{"seq":{},"entity":"tickets","entity_id":"T-1","op":"upsert","row":{row}}}"#,
                    k + 1
                )
            })
            .collect();
        let text = format!(
            r#"{{"changes":[{}],"next_cursor":15,"has_more":false,"remaining":0,"server_time":"2026-12-01T10:00:00Z"}}"#,
            changes.join(",")
        );
        for _ in 0..2 {
            let wire: PulledPage = serde_json::from_str(&text).unwrap();
            let protocol: ChangePage = serde_json::from_str(&text).unwrap();
            assert_eq!(applied(&wire), applied(&PulledPage::from(&protocol)));
            for change in &wire.changes {
                let row = change.row.as_ref().unwrap();
                assert_eq!(row.get("ticket_code"), Some(&Cell::Text("T-1".into())));
                assert_eq!(row.get("status"), Some(&Cell::Text("RESERVED".into())));
                assert_eq!(row.get("orq"), Some(&Cell::Integer(1)));
                assert_eq!(row.get("customer_email"), Some(&Cell::Text("a@x".into())));
            }
        }
    }

    /// Issue 13: a value nested 10,000 deep (arrays or objects) where a
    /// page keeps it (a synced column: read as a `Value`) refuses the page
    /// with the parser's depth error (serde_json's limit of 128), not a
    /// stack overflow of the test's thread. Where the page only skips it
    /// (a field no synced table has, a change's or the page's unknown
    /// field) the skip does not recurse (serde_json skips with a loop): the
    /// page reads, without that value.
    #[test]
    fn a_deeply_nested_value_is_refused_or_skipped_without_recursion() {
        let arrays = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let objects = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
        let page = |change_extra: &str, row_extra: &str, page_extra: &str| {
            format!(
                r#"{{"changes":[{{"seq":1,"entity":"tickets","entity_id":"T-1","op":"upsert"{change_extra},"row":{{"ticket_code":"T-1"{row_extra}}}}}],"next_cursor":1,"has_more":false,"remaining":0,"server_time":"2026-12-01T10:00:00Z"{page_extra}}}"#
            )
        };
        for deep in [&arrays, &objects] {
            for kept in [
                page("", &format!(r#","entitlements":{deep}"#), ""),
                page("", &format!(r#","entitlements":[1,{{"b":{deep}}}]"#), ""),
            ] {
                let err = serde_json::from_str::<PulledPage>(&kept).unwrap_err();
                assert!(
                    err.to_string().contains("recursion limit exceeded"),
                    "{err}"
                );
                assert_eq!(err.classify(), serde_json::error::Category::Syntax);
            }
            for skipped in [
                page("", &format!(r#","not_a_column":{deep}"#), ""),
                page(&format!(r#","extra":{deep}"#), "", ""),
                page("", "", &format!(r#","extra":{deep}"#)),
            ] {
                let read: PulledPage = serde_json::from_str(&skipped).unwrap();
                assert_eq!(read.changes.len(), 1);
                assert_eq!(
                    read.changes[0].row.as_ref().unwrap().0,
                    vec![(column_id("ticket_code").unwrap(), Cell::Text("T-1".into()))]
                );
            }
        }
    }

    /// A refusal repeats at most 64 characters of each piece of the
    /// server's text (entity, entity_id, op), cut on a character boundary
    /// (multi-byte characters: a byte cut would panic) and marked with an
    /// ellipsis; shorter text is repeated whole.
    #[test]
    fn a_refusal_quotes_64_characters_of_long_multibyte_text() {
        // 2-, 3- and 4-byte characters, 200 of them: 64 characters end
        // inside no character only if the cut counts characters.
        let long: String = "é€😀".chars().cycle().take(200).collect();
        let head: String = long.chars().take(64).collect();
        assert_eq!(quoted(&long), format!("{head}…"));
        assert_eq!(quoted(&long).chars().count(), 65);
        let exact: String = long.chars().take(64).collect();
        assert_eq!(quoted(&exact), exact, "64 characters: whole");
        assert_eq!(quoted("upsert"), "upsert");

        let page: PulledPage = serde_json::from_str(&format!(
            r#"{{"changes":[{{"seq":3,"entity":"tickets","entity_id":"{long}","op":"{long}","row":null}}],"next_cursor":3,"has_more":false,"remaining":0,"server_time":"2026-12-01T10:00:00Z"}}"#
        ))
        .unwrap();
        match page.check() {
            Err(StoreError::RefusedPage {
                seq,
                entity,
                entity_id,
                reason,
            }) => {
                assert_eq!((seq, entity.as_str()), (3, "tickets"));
                assert_eq!(entity_id, format!("{head}…"));
                assert_eq!(reason, format!("unknown op \"{head}…\""));
            }
            other => panic!("not refused: {other:?}"),
        }
    }

    /// A table keyed by an integer takes only the integer's own text as an
    /// entity_id: "09", "+9", " 9", "9 " and "-0" name row 9 (or 0) for
    /// SQLite but not for the outbox's and peer holds' text comparisons,
    /// so an upsert or a delete under one refuses the page. Before, an
    /// upsert whose row's key was the same text ("09" and "09") passed, and
    /// a delete was not checked at all.
    #[test]
    fn an_integer_key_written_otherwise_refuses_the_page() {
        let page = |entity_id: &str, op: &str, row: &str| -> PulledPage {
            serde_json::from_str(&format!(
                r#"{{"changes":[{{"seq":1,"entity":"venues","entity_id":{},"op":"{op}","row":{row}}}],"next_cursor":1,"has_more":false,"remaining":0,"server_time":"2026-12-01T10:00:00Z"}}"#,
                serde_json::to_string(entity_id).unwrap()
            ))
            .unwrap()
        };
        for id in [
            "09",
            "+9",
            " 9",
            "9 ",
            "-0",
            "9.0",
            "99999999999999999999",
            "",
        ] {
            let text_key = format!(r#"{{"id":{},"orq":1}}"#, serde_json::to_string(id).unwrap());
            for (op, row) in [("upsert", text_key.as_str()), ("delete", "null")] {
                match page(id, op, row).check() {
                    Err(StoreError::RefusedPage { reason, .. }) => assert_eq!(
                        reason, "an entity_id that is not an integer's text (the id key)",
                        "{op} {id:?}"
                    ),
                    other => panic!("{op} {id:?}: not refused: {other:?}"),
                }
            }
        }
        // The integer's own text passes, with its key as a number or as
        // that same text; a text-keyed table (tickets) is not concerned.
        for (id, row) in [
            ("9", r#"{"id":9,"orq":1}"#),
            ("9", r#"{"id":"9","orq":1}"#),
            ("-3", r#"{"id":-3,"orq":1}"#),
            ("0", r#"{"id":0,"orq":1}"#),
        ] {
            page(id, "upsert", row).check().unwrap();
            page(id, "delete", "null").check().unwrap();
        }
        let ticket: PulledPage = serde_json::from_str(
            r#"{"changes":[{"seq":1,"entity":"tickets","entity_id":"09","op":"upsert","row":{"ticket_code":"09"}}],"next_cursor":1,"has_more":false,"remaining":0,"server_time":"2026-12-01T10:00:00Z"}"#,
        )
        .unwrap();
        ticket.check().unwrap();
    }

    /// A page the gate cannot read whole is refused whole: no change of it
    /// is read, so none is applied. In particular a row that is not an
    /// object is an error, never a change without a row (which the apply
    /// would take for a delete).
    #[test]
    fn a_malformed_page_is_refused() {
        let good = r#"{"seq":1,"entity":"tickets","entity_id":"T-1","op":"upsert","row":{"ticket_code":"T-1"}}"#;
        let page = |change: &str| {
            format!(
                r#"{{"changes":[{good},{change}],"next_cursor":2,"has_more":false,"remaining":0,"server_time":"2026-12-01T10:00:00Z"}}"#
            )
        };
        assert!(serde_json::from_str::<PulledPage>(&page(good)).is_ok());
        for change in [
            r#"{"seq":2,"entity":"tickets","entity_id":"T-2","op":"upsert","row":["T-2"]}"#,
            r#"{"seq":2,"entity":"tickets","entity_id":"T-2","op":"upsert","row":"T-2"}"#,
            r#"{"seq":2,"entity":"tickets","entity_id":"T-2","op":"upsert","row":7}"#,
            r#"{"seq":2,"entity":"tickets","entity_id":"T-2","op":"upsert","row":true}"#,
            r#"{"seq":"2","entity":"tickets","entity_id":"T-2","op":"upsert","row":{}}"#,
            r#"{"seq":2,"entity":7,"entity_id":"T-2","op":"upsert","row":{}}"#,
            r#"{"seq":2,"entity":"tickets","entity_id":null,"op":"upsert","row":{}}"#,
            r#"{"seq":2,"entity":"tickets","entity_id":"T-2","row":{}}"#,
            r#"{"seq":2,"entity":"tickets","entity_id":"T-2","op":"upsert","row":{"ticket_code":}}"#,
            r#"{"seq":2,"entity":"tickets","entity_id":"T-2","op":"upsert","row":{"ticket_code":"T-2"}"#,
        ] {
            assert!(
                serde_json::from_str::<PulledPage>(&page(change)).is_err(),
                "{change}"
            );
        }
        let truncated = page(good);
        assert!(serde_json::from_str::<PulledPage>(&truncated[..truncated.len() - 2]).is_err());
        assert!(serde_json::from_str::<PulledPage>(r#"{"next_cursor":2,"has_more":false,"remaining":0,"server_time":"2026-12-01T10:00:00Z"}"#).is_err());
    }
}
