//! Frame → durable verdict: a rendered, degraded camera frame with a signed
//! ticket code goes through the decoder and `Store::scan` (signature check,
//! gate verdict, verification committed and flushed to disk), as the kiosk's
//! scan loop does. Prints median / p95 per resolution.
//!
//! `cargo bench -p entrada-desktop --bench frame_to_verdict [-- --quick]`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use chrono::{NaiveTime, Utc};
use entrada::domain::{
    ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, Orq, TicketCode, VerdictCode,
};
use entrada::store::{ReserveRequest, Store};
use entrada_desktop::scan::{Decoder, DecoderConfig};
use support::Class;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let per_resolution = if quick { 20 } else { 200 };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("gate.db")).unwrap();
    let now = Utc::now();
    let venue = store.add_venue(Orq(1), "Bench", "UTC", now).unwrap();
    let slot = store
        .create_slot(
            Orq(1),
            &NewSlot {
                venue_id: venue.id,
                date: now.date_naive(),
                start_time: NaiveTime::MIN,
                end_time: NaiveTime::from_hms_opt(23, 59, 59).unwrap(),
                total_capacity: 100_000,
            },
            now,
        )
        .unwrap();
    let resolutions = [(640u32, 480u32), (1280, 720), (1920, 1080)];
    let n = per_resolution * resolutions.len();
    let tickets: Vec<NewTicket> = (0..n)
        .map(|i| NewTicket::plain(&format!("FV-{i:05}"), ActivationMode::Immediate).unwrap())
        .collect();
    store.insert_tickets(Orq(1), &tickets, now).unwrap();
    let contact = Contact::validate("bench@example.com", "+12025551234").unwrap();
    for t in &tickets {
        store
            .reserve_slot(
                Orq(1),
                &ReserveRequest {
                    ticket: t.ticket_code.clone(),
                    slot_id: slot.id,
                    contact: contact.clone(),
                },
                now,
            )
            .unwrap();
    }
    let gate = Gate {
        venue_id: Some(venue.id),
        ..Gate::default()
    };
    let mut rng = support::rng(20251125);
    println!("frame_to_verdict: {per_resolution} frames per resolution, signed ENT1 codes, mild degradations, every frame a new ticket (ADMIT written and flushed)");
    println!();
    println!("| resolution | frames | admitted | decode median / p95 ms | frame → durable verdict median / p95 ms |");
    println!("|---|---:|---:|---:|---:|");
    for (idx, (w, h)) in resolutions.into_iter().enumerate() {
        let (mut decode_ms, mut total_ms, mut admitted) = (Vec::new(), Vec::new(), 0);
        for i in 0..per_resolution {
            let code = TicketCode::parse(&format!("FV-{:05}", idx * per_resolution + i)).unwrap();
            let signed = store.signed_code(Orq(1), &code, now).unwrap();
            let class = [
                Class::Clean,
                Class::Rotation,
                Class::Perspective,
                Class::Blur,
                Class::Noise,
                Class::Glare,
            ][i % 6];
            let frame = support::to_frame(&support::scene(w, h, &signed, class, 0, &mut rng).image);
            let mut decoder = Decoder::new(DecoderConfig::default());
            let started = Instant::now();
            let decoded = decoder.decode(&frame);
            decode_ms.push(started.elapsed().as_secs_f64() * 1e3);
            if let Some(d) = decoded.first() {
                let v = store
                    .scan(
                        Orq(1),
                        d.payload.as_bytes(),
                        OperatorId(1),
                        &gate,
                        Utc::now(),
                    )
                    .unwrap();
                admitted += usize::from(v.verdict == VerdictCode::Admit);
            }
            total_ms.push(started.elapsed().as_secs_f64() * 1e3);
        }
        decode_ms.sort_by(f64::total_cmp);
        total_ms.sort_by(f64::total_cmp);
        println!(
            "| {w}×{h} | {per_resolution} | {admitted} | {:.2} / {:.2} | {:.2} / {:.2} |",
            percentile(&decode_ms, 0.5),
            percentile(&decode_ms, 0.95),
            percentile(&total_ms, 0.5),
            percentile(&total_ms, 0.95)
        );
    }
}
