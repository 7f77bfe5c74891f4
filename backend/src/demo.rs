//! A ready-to-use demo data set: two orgs, three venues, 90 days of slots and
//! tickets in every lifecycle state, so every gate verdict can be seen.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::Serialize;

use crate::domain::{
    slot::SlotChange, ActivationMode, ChangedBy, Contact, Gate, NewSlot, NewTicket, Orq, Role,
    TicketCode, Venue,
};
use crate::store::{ReserveRequest, Result, SeedPlan, Store};

/// One demo ticket and what a gate at its venue says about it right now.
#[derive(Debug, Clone, Serialize)]
pub struct DemoTicket {
    pub orq: i64,
    pub ticket_code: String,
    pub state: &'static str,
    pub gate_verdict: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// False when the file already held the demo (nothing was added).
    pub created: bool,
    pub venues: Vec<Venue>,
    pub slots_created: u64,
    pub operators: Vec<(i64, String, &'static str)>,
    pub tickets: Vec<DemoTicket>,
}

/// The ticket the demo is recognised by (pairing replaces the demo's data).
const MARKER: &str = crate::store::DEMO_MARKER_TICKET;

fn local_today(venue: &Venue, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&venue.timezone).date_naive()
}

/// Fills `store` with the demo data set, once; `now` anchors "today".
pub fn populate(
    store: &Store,
    now: DateTime<Utc>,
    mut progress: impl FnMut(u64),
) -> Result<DemoReport> {
    let marker = TicketCode::parse(MARKER)?;
    let already = store.get_ticket(Orq(1), &marker).is_ok();
    let mut report = DemoReport {
        created: !already,
        venues: Vec::new(),
        slots_created: 0,
        operators: Vec::new(),
        tickets: Vec::new(),
    };
    if !already {
        build(store, now, &mut report, &mut progress)?;
    } else {
        report.venues = [Orq(1), Orq(2)]
            .into_iter()
            .map(|o| store.list_venues(o))
            .collect::<Result<Vec<_>>>()?
            .concat();
    }
    for (orq, code, state) in DEMO_TICKETS {
        // As seen by a gate at the org's first venue.
        let gate = Gate {
            venue_id: report
                .venues
                .iter()
                .find(|v| v.orq == Orq(orq))
                .map(|v| v.id),
            ..Gate::default()
        };
        let verdict = store.validate_ticket(Orq(orq), &TicketCode::parse(code)?, &gate, now)?;
        report.tickets.push(DemoTicket {
            orq,
            ticket_code: code.to_string(),
            state,
            gate_verdict: verdict.verdict.code().to_string(),
        });
    }
    Ok(report)
}

const DEMO_TICKETS: [(i64, &str, &str); 12] = [
    (1, MARKER, "reserved for today's all-day slot"),
    (1, "DEMO-ADMIT-2", "reserved for today's all-day slot"),
    (1, "DEMO-ADMIT-3", "reserved for today's all-day slot"),
    (1, "DEMO-VERIFIED", "already verified at the gate"),
    (1, "DEMO-TOMORROW", "reserved for tomorrow"),
    (1, "DEMO-INACTIVE", "deferred mode, not activated yet"),
    (1, "DEMO-ACTIVE", "activated, no reservation yet"),
    (1, "DEMO-RES-CANCELLED", "reservation cancelled"),
    (1, "DEMO-CANCELLED", "ticket cancelled"),
    (1, "DEMO-EXPIRED", "expired yesterday"),
    (1, "DEMO-OTHER-VENUE", "reserved today at the garden venue"),
    (
        2,
        "DEMO-HARBOR-1",
        "org 2: reserved for today at the aquarium",
    ),
];

/// The demo operators' PIN.
pub const OPERATOR_PIN: &str = "1234";
/// The demo supervisor's PIN (supervisors need 6 to 8 digits).
pub const SUPERVISOR_PIN: &str = "654321";

fn build(
    store: &Store,
    now: DateTime<Utc>,
    report: &mut DemoReport,
    progress: &mut impl FnMut(u64),
) -> Result<()> {
    let museum = store.add_venue(Orq(1), "Museo Entrada", "Europe/Madrid", now)?;
    let garden = store.add_venue(Orq(1), "Jardín Botánico", "Europe/Madrid", now)?;
    let aquarium = store.add_venue(Orq(2), "Harbor Aquarium", "America/New_York", now)?;
    for (venue, orq) in [(&museum, Orq(1)), (&garden, Orq(1)), (&aquarium, Orq(2))] {
        let plan = SeedPlan {
            venue: venue.id,
            from: local_today(venue, now),
            days: 90,
            capacity: 200,
        };
        let r = store.seed_slots(orq, plan, now, &mut *progress)?;
        report.slots_created += r.created;
    }
    for (orq, role, name, pin) in [
        (Orq(1), Role::Operator, "Ana (gate 1)", OPERATOR_PIN),
        (
            Orq(1),
            Role::Supervisor,
            "Luis (supervisor)",
            SUPERVISOR_PIN,
        ),
        (Orq(2), Role::Operator, "Sam (aquarium gate)", OPERATOR_PIN),
    ] {
        let op = store.add_operator(orq, role, name, Some(pin), now)?;
        report
            .operators
            .push((op.id.0, op.display_name, role.as_str()));
    }

    // An all-day slot today, so the demo admits whatever the hour.
    let all_day = |venue: &Venue, capacity| -> Result<_> {
        let new = NewSlot {
            venue_id: venue.id,
            date: local_today(venue, now),
            start_time: NaiveTime::MIN,
            end_time: NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN),
            total_capacity: capacity,
        };
        store.create_slot(venue.orq, &new, now)
    };
    let museum_today = all_day(&museum, 50)?;
    let garden_today = all_day(&garden, 50)?;
    let aquarium_today = all_day(&aquarium, 50)?;
    let contact = Contact::validate("visitor@example.com", "+34612345678")?;

    let issue = |orq: Orq,
                 code: &str,
                 mode: ActivationMode,
                 expires: Option<DateTime<Utc>>|
     -> Result<()> {
        let mut t = NewTicket::plain(code, mode)?;
        t.order_id = Some(1000);
        t.product_id = Some(1);
        t.user_id = Some(1);
        t.expires_at = expires;
        t.purchase_email = Some("visitor@example.com".into());
        store.insert_tickets(orq, &[t], now)?;
        Ok(())
    };
    let reserve = |orq: Orq, code: &str, slot| -> Result<_> {
        let req = ReserveRequest {
            ticket: TicketCode::parse(code)?,
            slot_id: slot,
            contact: contact.clone(),
        };
        store.reserve_slot(orq, &req, now)
    };
    for code in [
        MARKER,
        "DEMO-ADMIT-2",
        "DEMO-ADMIT-3",
        "DEMO-VERIFIED",
        "DEMO-RES-CANCELLED",
        "DEMO-CANCELLED",
    ] {
        issue(Orq(1), code, ActivationMode::Immediate, None)?;
        reserve(Orq(1), code, museum_today.id)?;
    }
    let operator = crate::domain::OperatorId(report.operators[0].0);
    store.verify_ticket(
        Orq(1),
        &TicketCode::parse("DEMO-VERIFIED")?,
        operator,
        &Gate::default(),
        now,
    )?;
    let res = store.reservation_for_ticket(Orq(1), &TicketCode::parse("DEMO-RES-CANCELLED")?)?;
    if let Some(res) = res {
        store.cancel_reservation(Orq(1), res.id, ChangedBy::Staff, now)?;
    }
    store.cancel_ticket(Orq(1), &TicketCode::parse("DEMO-CANCELLED")?, None, now)?;

    issue(Orq(1), "DEMO-TOMORROW", ActivationMode::Immediate, None)?;
    let tomorrow = local_today(&museum, now) + Duration::days(1);
    let tomorrow_slots =
        store.list_slots(Orq(1), Some(museum.id), Some(tomorrow), Some(tomorrow))?;
    if let Some(slot) = tomorrow_slots.first() {
        reserve(Orq(1), "DEMO-TOMORROW", slot.id)?;
        // And make tomorrow's first slot FULL, to be seen in calendars.
        store.update_slot(
            Orq(1),
            slot.id,
            SlotChange {
                total_capacity: Some(1),
                status: None,
            },
            now,
        )?;
    }
    issue(Orq(1), "DEMO-INACTIVE", ActivationMode::Deferred, None)?;
    issue(Orq(1), "DEMO-ACTIVE", ActivationMode::Immediate, None)?;
    issue(
        Orq(1),
        "DEMO-EXPIRED",
        ActivationMode::Immediate,
        Some(now - Duration::days(1)),
    )?;
    issue(Orq(1), "DEMO-OTHER-VENUE", ActivationMode::Immediate, None)?;
    reserve(Orq(1), "DEMO-OTHER-VENUE", garden_today.id)?;
    issue(Orq(2), "DEMO-HARBOR-1", ActivationMode::Immediate, None)?;
    reserve(Orq(2), "DEMO-HARBOR-1", aquarium_today.id)?;
    // 200 more activated tickets per org for lists and lookups.
    for orq in [Orq(1), Orq(2)] {
        let batch: Vec<NewTicket> = (1..=200)
            .map(|i| {
                let mut t =
                    NewTicket::plain(&format!("DEMO-{}-{i:04}", orq.0), ActivationMode::Deferred)?;
                t.purchase_email = Some(format!("buyer{i}@example.com"));
                Ok::<_, crate::domain::DomainError>(t)
            })
            .collect::<std::result::Result<_, _>>()?;
        store.insert_tickets(orq, &batch, now)?;
    }
    report.venues = vec![museum, garden, aquarium];
    Ok(())
}
