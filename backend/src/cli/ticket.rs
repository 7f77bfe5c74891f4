//! `entrada ticket`: signed codes and QR images.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use entrada::domain::{Orq, TicketCode};

use super::engine::open_any;
use super::{progress_bar, DbArg};

/// `entrada ticket qr`.
pub(crate) fn qr(
    db: DbArg,
    code: String,
    orq: i64,
    out: PathBuf,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let store = open_any(&db)?;
    let signed = store.signed_code(Orq(orq), &TicketCode::parse(&code)?, now)?;
    entrada::qr::write(&signed, &out).map_err(|e| anyhow::anyhow!(e))?;
    eprintln!("{}: {signed}", out.display());
    Ok(())
}

/// `entrada ticket export-qr`.
pub(crate) fn export_qr(
    db: DbArg,
    orq: i64,
    out_dir: PathBuf,
    limit: u32,
    format: String,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let store = open_any(&db)?;
    entrada::qr::file_name("T", &format)?;
    std::fs::create_dir_all(&out_dir)?;
    let bar = progress_bar(limit.into(), "rendering QR codes");
    let (mut after, mut done) = (None, 0u32);
    while done < limit {
        let page = store.list_tickets(
            Orq(orq),
            &Default::default(),
            after.as_ref(),
            1000.min(limit - done),
        )?;
        let Some(last) = page.last() else { break };
        after = Some(last.ticket_code.clone());
        for t in &page {
            let signed = store.signed_code(Orq(orq), &t.ticket_code, now)?;
            // A name made from the code: never a path out of --out-dir.
            let name = entrada::qr::file_name(t.ticket_code.as_str(), &format)?;
            entrada::qr::write(&signed, &out_dir.join(name)).map_err(|e| anyhow::anyhow!(e))?;
            bar.inc(1);
        }
        done += page.len() as u32;
    }
    bar.finish_and_clear();
    eprintln!("{done} QR images in {}", out_dir.display());
    Ok(())
}

/// `entrada ticket code`.
pub(crate) fn code(
    db: DbArg,
    code: String,
    orq: i64,
    reissue: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let store = open_any(&db)?;
    let code = TicketCode::parse(&code)?;
    let signed = if reissue {
        store.reissue_code(Orq(orq), &code, now)?
    } else {
        store.signed_code(Orq(orq), &code, now)?
    };
    println!("{signed}");
    Ok(())
}
