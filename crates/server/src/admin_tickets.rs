//! The console's tickets (issue 16): search and cancel (refund).

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use utoipa::IntoParams;

use super::access::{admin, org_admin, slot_manager};
use super::admin::TicketPage;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery, Caller};
use super::{parse_code, AppState};
use crate::domain::{DomainError, Ticket};
use crate::store::TicketQuery;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TicketSearchQuery {
    /// A ticket code, an order id, an e-mail (purchase or reservation, any
    /// case) or a phone number.
    #[param(min_length = 1, max_length = 254)]
    pub q: String,
    /// Page size, 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Return tickets after this code (the previous page's `next_after`).
    #[param(pattern = r"^[!-~]{1,64}$")]
    pub after: Option<String>,
    /// Only tickets of this status (as the list's and the export's filter).
    #[param(
        pattern = "^(PENDING_PAYMENT|ACTIVATED|RESERVED|VERIFIED|EXPIRED|minted|active|redeemed|cancelled)$"
    )]
    pub status: Option<String>,
    #[param(pattern = "^(inactive|active|redeemed|cancelled)$")]
    pub activation_status: Option<String>,
    pub user_id: Option<i64>,
}

/// The list's filters, and the caller's venue when its token or session is
/// bound to one: a venue-bound caller lists, searches and exports only its
/// venue's tickets (a ticket's venue is its reservation's slot's).
pub(crate) fn ticket_filter(
    status: Option<&str>,
    activation_status: Option<&str>,
    user_id: Option<i64>,
    venue_id: Option<crate::domain::VenueId>,
) -> Result<crate::store::TicketFilter, ApiError> {
    use crate::domain::{ActivationStatus, TicketStatus};
    Ok(crate::store::TicketFilter {
        status: status.map(TicketStatus::parse).transpose()?,
        activation_status: activation_status.map(ActivationStatus::parse).transpose()?,
        user_id,
        venue_id,
    })
}

#[utoipa::path(get, path = "/api/admin/tickets/search", tag = "admin", params(TicketSearchQuery),
    responses((status = 200, description = "Matching tickets in code order (keyset pages)", body = TicketPage),
        (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN: operators may not search the org's tickets", body = ErrorBody),
        (status = 422, description = "INVALID_INPUT (details.field: q, limit, after or a filter)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn search_tickets(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TicketSearchQuery>,
) -> Result<Json<TicketPage>, ApiError> {
    let p = slot_manager(&caller)?;
    let orq = p.orq;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(DomainError::invalid("limit", "must be 1 to 1000").into());
    }
    let query = TicketQuery::parse(&q.q)?;
    let filter = ticket_filter(
        q.status.as_deref(),
        q.activation_status.as_deref(),
        q.user_id,
        p.venue_id,
    )?;
    let after = q.after.as_deref().map(parse_code).transpose()?;
    let tickets = state
        .run(move |s| s.search_tickets(orq, &query, &filter, after.as_ref(), limit))
        .await?;
    let next_after = (tickets.len() == limit as usize)
        .then(|| tickets.last().map(|t| t.ticket_code.to_string()))
        .flatten();
    Ok(Json(TicketPage {
        tickets,
        next_after,
    }))
}

#[utoipa::path(post, path = "/api/admin/tickets/{ticket_id}/cancel", tag = "admin",
    params(("ticket_id" = String, Path, pattern = r"^[!-~]{1,64}$")),
    responses((status = 200, description = "The ticket, cancelled; its live reservation is cancelled and its place freed. Cancelling a cancelled ticket answers it unchanged. Gates learn it with their next sync and refuse it (TICKET_CANCELLED).", body = Ticket),
        (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN: only an admin cancels tickets", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such ticket in the token's org (for a venue-bound caller: in its venue)", body = ErrorBody),
        (status = 409, description = "TICKET_REDEEMED: used at a gate, it stays used", body = ErrorBody),
        (status = 422, description = "INVALID_INPUT: not a ticket code", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel_ticket(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<Ticket>, ApiError> {
    let p = admin(&caller)?;
    let (orq, venue) = (p.orq, p.venue_id);
    let code = parse_code(&code)?;
    Ok(Json(
        state
            .run(move |s| s.cancel_ticket(orq, &code, venue, Utc::now()))
            .await?,
    ))
}

/// One refused row of a CSV import.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CsvRowError {
    /// 1-based line of the file where the row starts (the header is line 1;
    /// a quoted field with a line break makes a row span several lines).
    pub line: usize,
    /// The row's ticket code as written, when it has one.
    pub ticket_code: Option<String>,
    /// What is wrong, as a stable code (the message says it for people).
    pub problem: RowProblem,
    pub message: String,
    /// For a code repeated in the file: the line it is first on (so a
    /// client that sent the file in parts can name the line in its file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<usize>,
}

/// Why a CSV row was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RowProblem {
    /// A field is missing or wrong, or the row is not CSV.
    Invalid,
    /// The code is on an earlier line of the same file (`duplicate_of`).
    RepeatedInFile,
    /// The org already has a ticket with this code. A client that lost its
    /// connection during an import finds here whether the part went in.
    Exists,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct CsvImported {
    pub imported: usize,
}

/// A dry run's answer: every row is good, nothing was written.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct CsvChecked {
    /// Rows checked (all good).
    pub checked: usize,
    /// Each row's ticket code as the import would store it, in file order
    /// (so a client sending a big file in parts finds a code repeated in
    /// another part by comparing these, with the server's own reading of
    /// the CSV: quoting, trimming, column order).
    pub ticket_codes: Vec<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Check only: every row is checked (fields, duplicates in the file and
    /// against the org's tickets) and the same report is answered, but
    /// nothing is imported (200 `CsvChecked` instead of 201).
    pub dry_run: Option<bool>,
}

/// Every row checked; a duplicate code (in the file, or already in the org)
/// is a bad row too. All good: `Ok(tickets)`; otherwise every bad row.
#[cfg(test)]
fn check_rows(body: &str, exists: impl Fn(&crate::domain::TicketCode) -> bool) -> Checked {
    judge_rows(read_rows(body), exists).0
}

/// The good rows' tickets, or every bad row.
type Checked = Result<Vec<crate::domain::NewTicket>, Vec<CsvRowError>>;

/// One CSV record as read, before the org's tickets are consulted.
struct ReadRow {
    /// The file's line where the record starts.
    line: usize,
    /// The first field as written (for the report), when there is one.
    written: Option<String>,
    ticket: Result<crate::domain::NewTicket, String>,
}

/// A file read, row by row; or the header's own error.
type ReadRows = Result<Vec<ReadRow>, CsvRowError>;

/// Reads every record, each row's fields checked as the insert checks them;
/// past `MAX_TICKETS_PER_REQUEST` records, one bad row says so and reading stops.
fn read_rows(body: &str) -> ReadRows {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(body.as_bytes());
    let headers = reader.headers().map_err(|e| CsvRowError {
        line: 1,
        ticket_code: None,
        problem: RowProblem::Invalid,
        message: e.to_string(),
        duplicate_of: None,
    })?;
    let headers = headers.clone();
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        // The reader's position, not the record count: a quoted line break
        // makes a record span lines, and people look for the file's line.
        let at = match &record {
            Ok(r) => r.position(),
            Err(e) => e.position(),
        };
        let line = at.map_or(i + 2, |p| start_line(body, p));
        if i >= super::admin::MAX_TICKETS_PER_REQUEST {
            rows.push(ReadRow {
                line,
                written: None,
                ticket: Err(format!(
                    "more than {} rows",
                    super::admin::MAX_TICKETS_PER_REQUEST
                )),
            });
            break;
        }
        let row = match record {
            Err(e) => ReadRow {
                line,
                written: None,
                ticket: Err(e.to_string()),
            },
            Ok(record) => {
                let written = record.get(0).map(str::to_string).filter(|c| !c.is_empty());
                let ticket = record
                    .deserialize::<super::admin::CsvRow>(Some(&headers))
                    .map_err(|e| e.to_string())
                    .and_then(|row| super::admin::ticket_from_csv(row).map_err(|e| e.to_string()));
                ReadRow {
                    line,
                    written,
                    ticket,
                }
            }
        };
        rows.push(row);
    }
    Ok(rows)
}

/// The line a record starts on. The reader's position is where it began
/// reading, before the empty lines it skips, so those are counted here.
fn start_line(body: &str, at: &csv::Position) -> usize {
    let from = usize::try_from(at.byte()).unwrap_or(usize::MAX);
    let empty = body.as_bytes().get(from..).unwrap_or_default();
    let skipped = empty
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .filter(|b| **b == b'\n')
        .count();
    usize::try_from(at.line())
        .unwrap_or(usize::MAX)
        .saturating_add(skipped)
}

/// The codes the rows would store: what the store is asked about, at once.
fn wanted_codes(rows: &[ReadRow]) -> Vec<crate::domain::TicketCode> {
    rows.iter()
        .filter_map(|r| r.ticket.as_ref().ok().map(|t| t.ticket_code.clone()))
        .collect()
}

/// The rows judged: each good row's code as stored (`None` for a bad row),
/// in file order, is what a dry run answers, so a client that sends a file
/// in parts compares codes across parts.
fn judge_rows(
    rows: ReadRows,
    exists: impl Fn(&crate::domain::TicketCode) -> bool,
) -> (Checked, Vec<Option<String>>) {
    let rows = match rows {
        Ok(rows) => rows,
        Err(header) => return (Err(vec![header]), Vec::new()),
    };
    let mut codes = Vec::with_capacity(rows.len());
    let mut seen = std::collections::HashMap::new();
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for (i, row) in rows.into_iter().enumerate() {
        let line = row.line;
        codes.push(None);
        let mut refuse = |code: Option<String>, problem, message: String, duplicate_of| {
            bad.push(CsvRowError {
                line,
                ticket_code: code,
                problem,
                message,
                duplicate_of,
            })
        };
        match row.ticket {
            Err(message) => refuse(row.written, RowProblem::Invalid, message, None),
            Ok(t) => {
                let code = t.ticket_code.to_string();
                if let Some(first) = seen.get(&code) {
                    let message = format!("the code is already on line {first}");
                    refuse(
                        Some(code),
                        RowProblem::RepeatedInFile,
                        message,
                        Some(*first),
                    );
                } else if exists(&t.ticket_code) {
                    let message = "a ticket with this code exists".into();
                    refuse(Some(code), RowProblem::Exists, message, None);
                } else {
                    codes[i] = Some(code.clone());
                    seen.insert(code, line);
                    good.push(t);
                }
            }
        }
    }
    if bad.is_empty() {
        (Ok(good), codes)
    } else {
        (Err(bad), codes)
    }
}

#[utoipa::path(post, path = "/api/admin/tickets/import/checked", tag = "admin", params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "Header: ticket_code,order_id,product_id,user_id,activation_mode,expires_at,entitlements,purchase_email (only ticket_code required); at most 20,000 rows and the server's bulk body limit. The console sends a big file in parts of 5,000 rows or 4 MiB, each with the header: every part with dry_run=true first, then, only if all are good, each part without it; a part whose answer was lost is checked again with dry_run=true (every row EXISTS: it went in)"),
    responses((status = 201, description = "Every row was good: all imported in one transaction", body = CsvImported),
        (status = 200, description = "dry_run=true and every row was good: nothing was imported", body = CsvChecked),
        (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN: only an admin imports tickets; ORG_ADMIN_ONLY: the admin token is bound to a venue (a ticket has no venue until reserved, so only an admin of the whole org imports tickets)", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody),
        (status = 422, description = "INVALID_ROWS (with or without dry_run): nothing was imported; details.rows lists every bad row ({line: where the row starts in the file, ticket_code, problem: INVALID | REPEATED_IN_FILE | EXISTS, message, duplicate_of: the first line of a repeated code}); with dry_run, details.ticket_codes has each row's code as read, null for a bad row; or INVALID_INPUT (an empty file)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn import_checked(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ImportQuery>,
    body: String,
) -> Result<axum::response::Response, ApiError> {
    let orq = org_admin(&caller, "importing tickets")?.orq;
    let dry_run = query.dry_run == Some(true);
    let rows = read_rows(&body);
    let wanted = rows.as_deref().map(wanted_codes).unwrap_or_default();
    // One store call for every code: a store error fails the request rather
    // than passing a code as free.
    let existing: std::collections::HashSet<_> = state
        .run(move |s| s.existing_ticket_codes(orq, &wanted))
        .await?
        .into_iter()
        .collect();
    let (checked, codes) = judge_rows(rows, |code| existing.contains(code));
    let tickets = checked.map_err(|rows| ApiError::Detailed {
        status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        code: "INVALID_ROWS",
        message: format!("{} bad row(s); nothing was imported", rows.len()),
        // A dry run names the good rows' codes too (null for a bad row).
        details: if dry_run {
            serde_json::json!({ "rows": rows, "ticket_codes": codes })
        } else {
            serde_json::json!({ "rows": rows })
        },
    })?;
    if tickets.is_empty() {
        return Err(DomainError::invalid("tickets", "the file has no rows").into());
    }
    if dry_run {
        let ticket_codes = codes.into_iter().flatten().collect();
        return Ok(Json(CsvChecked {
            checked: tickets.len(),
            ticket_codes,
        })
        .into_response());
    }
    let imported = tickets.len();
    state
        .run(move |s| s.insert_tickets(orq, &tickets, Utc::now()))
        .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(CsvImported { imported }),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (file, existing code) → imported codes or the bad lines.
    #[test]
    fn every_bad_row_is_named_and_nothing_else_is() {
        let file = "ticket_code,order_id,activation_mode\n\
                    C-1,1,immediate\n\
                    C-2,x,immediate\n\
                    C-3,1,sometimes\n\
                    C-1,2,\n\
                    OLD,3,\n\
                    C-4,4,deferred\n";
        let old = crate::domain::TicketCode::parse("OLD").unwrap();
        let bad = check_rows(file, |c| *c == old).expect_err("bad rows");
        let lines: Vec<(usize, Option<&str>)> = bad
            .iter()
            .map(|r| (r.line, r.ticket_code.as_deref()))
            .collect();
        assert_eq!(
            lines,
            [
                (3, Some("C-2")),
                (4, Some("C-3")),
                (5, Some("C-1")),
                (6, Some("OLD"))
            ]
        );
        assert!(bad[2].message.contains("line 2"), "{}", bad[2].message);
        assert_eq!(bad[2].duplicate_of, Some(2));
        let good = check_rows("ticket_code\nA-1\nA-2\n", |_| false).unwrap();
        assert_eq!(good.len(), 2);
        let ragged =
            check_rows("ticket_code,order_id\nA-1,1,extra\n", |_| false).expect_err("a ragged row");
        assert_eq!(ragged[0].line, 2);
    }

    /// (file, bad rows as (line, problem)): a row's line is where it starts
    /// in the file, so a quoted line break moves every later row's line,
    /// and each refusal says which kind it is.
    #[test]
    fn lines_are_the_files_lines_and_problems_are_named() {
        let old = crate::domain::TicketCode::parse("OLD").unwrap();
        let cases: [(&str, &[(usize, RowProblem)]); 5] = [
            // The same file as ui/admin/csv.test.ts's quote case, whose
            // splitter must end records where this reader does.
            (
                "ticket_code,note\nA,12\" tv\nB,\"a,b\"\nC,\"x\"\"y\nz\"\nD, \"w\nA,\n",
                &[(7, RowProblem::RepeatedInFile)],
            ),
            (
                "ticket_code\r\nR-1\r\n\r\nR-1\r\n",
                &[(4, RowProblem::RepeatedInFile)],
            ),
            (
                "ticket_code,purchase_email\nQ-1,\"ana\n@example.com\"\nQ-2,bad\n",
                &[(2, RowProblem::Invalid), (4, RowProblem::Invalid)],
            ),
            (
                "ticket_code,order_id,entitlements\nQ-1,1,\"{\"\"a\"\":\n\n1}\"\nQ-2,x,\nQ-2,3,\nOLD,4,\n",
                &[(5, RowProblem::Invalid), (7, RowProblem::Exists)],
            ),
            (
                "ticket_code\nR-1\n\nR-1\nOLD\n",
                &[(4, RowProblem::RepeatedInFile), (5, RowProblem::Exists)],
            ),
        ];
        for (file, want) in cases {
            let bad = check_rows(file, |c| *c == old).expect_err(file);
            let got: Vec<_> = bad.iter().map(|r| (r.line, r.problem)).collect();
            assert_eq!(got, want, "{file:?}");
        }
    }

    /// Every field the insert checks is checked per row: a bad purchase
    /// e-mail is a bad row (line, code, field), not a refusal of the file.
    #[test]
    fn a_bad_purchase_email_is_a_bad_row() {
        let file = "ticket_code,purchase_email\n\
                    E-1,ana@example.com\n\
                    E-2,not-an-address\n\
                    E-3,Ana@EXAMPLE.com\n\
                    E-4,ana@nodot\n";
        let bad = check_rows(file, |_| false).expect_err("bad e-mails");
        let lines: Vec<(usize, Option<&str>)> = bad
            .iter()
            .map(|r| (r.line, r.ticket_code.as_deref()))
            .collect();
        assert_eq!(lines, [(3, Some("E-2")), (5, Some("E-4"))]);
        for r in &bad {
            assert!(r.message.starts_with("purchase_email:"), "{}", r.message);
        }
        // A good address is stored as the insert stores it.
        let good = check_rows("ticket_code,purchase_email\nE-3,Ana@EXAMPLE.com\n", |_| {
            false
        })
        .unwrap();
        assert_eq!(good[0].purchase_email.as_deref(), Some("Ana@example.com"));
    }

    /// (cell, what the export writes): formulas disarmed, the rest as is;
    /// the import reads back what was stored.
    #[test]
    fn export_cells_never_start_a_formula_and_import_back_unchanged() {
        let cases = [
            (
                "=HYPERLINK(\"//x.example\")",
                "'=HYPERLINK(\"//x.example\")",
            ),
            ("+34600111222", "'+34600111222"),
            ("-1+1", "'-1+1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=already", "''=already"),
            ("'plain", "''plain"),
            ("ana@example.com", "ana@example.com"),
            ("T-1", "T-1"),
            ("", ""),
        ];
        for (cell, exported) in cases {
            assert_eq!(spreadsheet_safe(cell.to_string()), exported, "{cell:?}");
            assert_eq!(crate::admin::unquote_cell(exported), cell, "{exported:?}");
        }
        // A hand-written quote before anything harmless stays.
        assert_eq!(crate::admin::unquote_cell("'abc"), "'abc");
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TicketExportQuery {
    /// Only tickets this search finds (as /api/admin/tickets/search).
    #[param(min_length = 1, max_length = 254)]
    pub q: Option<String>,
    #[param(
        pattern = "^(PENDING_PAYMENT|ACTIVATED|RESERVED|VERIFIED|EXPIRED|minted|active|redeemed|cancelled)$"
    )]
    pub status: Option<String>,
    #[param(pattern = "^(inactive|active|redeemed|cancelled)$")]
    pub activation_status: Option<String>,
    pub user_id: Option<i64>,
}

/// The export's columns: the import's, then what happened to the ticket.
const EXPORT_HEADER: [&str; 14] = [
    "ticket_code",
    "order_id",
    "product_id",
    "user_id",
    "activation_mode",
    "expires_at",
    "entitlements",
    "purchase_email",
    "status",
    "activation_status",
    "customer_email",
    "customer_phone",
    "reserved_at",
    "verified_at",
];

/// One page of the export per read transaction (the writer is never held).
const EXPORT_PAGE: u32 = 1000;

/// A cell a spreadsheet would run as a formula (or a cell that already
/// starts with the quote that disarms one) gets a leading `'`: the export is
/// opened by an admin, its cells come partly from customers and shops
/// (e-mails, codes, `+` phone numbers). The import takes the quote off again
/// (`crate::admin::unquote_cell`), so an export re-imports unchanged.
pub(crate) fn spreadsheet_safe(cell: String) -> String {
    if cell.starts_with(ARMED) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// The first characters that make a spreadsheet run a cell (and the quote
/// that disarms them, so a cell that starts with one is quoted too).
pub(crate) const ARMED: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

fn csv_rows(tickets: &[Ticket], header: bool) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(tickets.len() * 120));
    let opt = |v: Option<String>| v.unwrap_or_default();
    if header {
        let _ = w.write_record(EXPORT_HEADER);
    }
    for t in tickets {
        // Text that came from outside is disarmed; numbers, the server's own
        // words and timestamps cannot be formulas (a negative id stays `-5`,
        // so it re-imports).
        let text = |v: Option<String>| spreadsheet_safe(opt(v));
        let _ = w.write_record([
            spreadsheet_safe(t.ticket_code.to_string()),
            opt(t.order_id.map(|v| v.to_string())),
            opt(t.product_id.map(|v| v.to_string())),
            opt(t.user_id.map(|v| v.to_string())),
            t.activation_mode.as_str().to_string(),
            opt(t.expires_at.map(|v| v.to_rfc3339())),
            spreadsheet_safe(t.entitlements.to_string()),
            text(t.purchase_email.clone()),
            t.status.as_str().to_string(),
            t.activation_status.as_str().to_string(),
            text(t.customer_email.clone()),
            text(t.customer_phone.clone()),
            opt(t.reserved_at.map(|v| v.to_rfc3339())),
            opt(t.verified_at.map(|v| v.to_rfc3339())),
        ]);
    }
    w.into_inner().unwrap_or_default()
}

/// The body's chunks as a stream (for `Body::from_stream`).
struct Chunks(tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>);

impl futures_core::Stream for Chunks {
    type Item = Result<Vec<u8>, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

#[utoipa::path(get, path = "/api/admin/tickets/export", tag = "admin", params(TicketExportQuery),
    responses((status = 200, description = "The filtered tickets as CSV (header first, code order), streamed page by page; re-importable columns first. With `q`, exactly what the search with the same filters finds; a venue-bound caller's export holds its venue's tickets only", content_type = "text/csv", body = String),
        (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN: only an admin exports tickets", body = ErrorBody),
        (status = 422, description = "INVALID_INPUT (a filter)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn export_tickets(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TicketExportQuery>,
) -> Result<axum::response::Response, ApiError> {
    let p = admin(&caller)?;
    let orq = p.orq;
    let search = q.q.as_deref().map(TicketQuery::parse).transpose()?;
    // The same filters with or without a search text: the file is the list.
    let filter = ticket_filter(
        q.status.as_deref(),
        q.activation_status.as_deref(),
        q.user_id,
        p.venue_id,
    )?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let mut after: Option<crate::domain::TicketCode> = None;
        let mut first = true;
        loop {
            let (search, filter, from) = (search.clone(), filter.clone(), after.clone());
            let page = state
                .run(move |s| match &search {
                    Some(query) => {
                        s.search_tickets(orq, query, &filter, from.as_ref(), EXPORT_PAGE)
                    }
                    None => s.list_tickets(orq, &filter, from.as_ref(), EXPORT_PAGE),
                })
                .await;
            let chunk = match page {
                Ok(tickets) => {
                    after = tickets.last().map(|t| t.ticket_code.clone());
                    let done = tickets.len() < EXPORT_PAGE as usize;
                    let bytes = csv_rows(&tickets, first);
                    first = false;
                    (Ok(bytes), done)
                }
                // The client sees a cut body, never a partial file as whole.
                Err(e) => (Err(std::io::Error::other(e.to_string())), true),
            };
            if tx.send(chunk.0).await.is_err() || chunk.1 {
                break;
            }
        }
    });
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"tickets.csv\"",
            ),
        ],
        axum::body::Body::from_stream(Chunks(rx)),
    )
        .into_response())
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TicketStory {
    pub ticket: Ticket,
    /// Oldest first. Not recorded, so never shown: a reservation's earlier
    /// slots, who cancelled, and gate scans that refused the ticket.
    pub events: Vec<crate::domain::ticket_story::StoryEvent>,
}

#[utoipa::path(get, path = "/api/admin/tickets/{ticket_id}/story", tag = "admin",
    params(("ticket_id" = String, Path, pattern = r"^[!-~]{1,64}$")),
    responses((status = 200, description = "The ticket and what happened to it: created, activated, reserved, reservation changed / cancelled / released as a no-show, verified (at which device, by which operator), conflicts, cancelled", body = TicketStory),
        (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN: operators may not read the org's tickets here", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such ticket in the token's org (for a venue-bound caller: in its venue)", body = ErrorBody),
        (status = 422, description = "INVALID_INPUT: not a ticket code", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn ticket_story(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<TicketStory>, ApiError> {
    let p = slot_manager(&caller)?;
    let (orq, venue) = (p.orq, p.venue_id);
    let code = parse_code(&code)?;
    let story = state
        .run(move |s| {
            // The story first: it is refused for another venue's ticket.
            let events = s.ticket_story(orq, &code, venue)?;
            Ok(TicketStory {
                ticket: s.get_ticket_in(orq, &code, venue)?,
                events,
            })
        })
        .await?;
    Ok(Json(story))
}
