//! Generated data: `entrada seed slots`, `entrada demo` and the demo report.

use chrono::{DateTime, Utc};
use entrada::domain::{slot::parse_date, Orq, VenueId};

use super::engine::sqlite_only;
use super::{progress_bar, DbArg};

/// `entrada seed slots`.
pub(crate) fn slots(
    db: DbArg,
    orq: i64,
    venue: i64,
    days: u32,
    capacity: i64,
    from: Option<String>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let store = sqlite_only(&db, "seed slots")?;
    let from = match from {
        Some(raw) => parse_date("from", &raw)?,
        None => {
            let v = store.get_venue(Orq(orq), VenueId(venue))?;
            now.with_timezone(&v.timezone).date_naive()
        }
    };
    let bar = progress_bar(days.into(), "seeding days");
    let plan = entrada::store::SeedPlan {
        venue: VenueId(venue),
        from,
        days,
        capacity,
    };
    let report = store.seed_slots(Orq(orq), plan, now, |n| bar.inc(n))?;
    bar.finish_and_clear();
    eprintln!(
        "{} slots created, {} already there ({} days from {from})",
        report.created, report.already_there, days
    );
    Ok(())
}

/// `entrada demo`.
pub(crate) fn demo(db: DbArg, json: bool, now: DateTime<Utc>) -> anyhow::Result<()> {
    let store = sqlite_only(&db, "demo")?;
    let bar = progress_bar(270, "seeding demo slots");
    let report = entrada::demo::populate(&store, now, |n| bar.inc(n))?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_demo(&db.db, &report);
    }
    Ok(())
}

pub(super) fn print_demo(path: &std::path::Path, report: &entrada::demo::DemoReport) {
    if report.created {
        println!("Demo data written to {}", path.display());
    } else {
        println!(
            "{} already holds the demo data; nothing added.",
            path.display()
        );
    }
    println!("\nVenues:");
    for v in &report.venues {
        println!(
            "  org {} venue {:>2}  {:<20} {}",
            v.orq, v.id, v.name, v.timezone
        );
    }
    if report.created {
        println!(
            "\n{} slots (09–12, 12–15, 15–18 for 90 days, plus an all-day slot today)",
            report.slots_created
        );
        println!("\nOperators:");
        for (id, name, role) in &report.operators {
            let pin = if *role == "supervisor" {
                entrada::demo::SUPERVISOR_PIN
            } else {
                entrada::demo::OPERATOR_PIN
            };
            println!("  {id:>2}  {name:<22} {role:<11} PIN {pin}");
        }
    }
    println!("\nTickets (verdict at the org's first venue, now):");
    for t in &report.tickets {
        println!(
            "  org {}  {:<20} {:<24} {}",
            t.orq, t.ticket_code, t.gate_verdict, t.state
        );
    }
    println!("\nPlus DEMO-1-0001..0200 and DEMO-2-0001..0200: deferred tickets, not activated.");
}
