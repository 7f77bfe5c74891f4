//! Fleet updates (issue 20): the version each gate reports, and its last
//! update's outcome, on every engine.

use super::*;
use crate::domain::update::{UpdateOutcome, UpdateReport, UpdateState};
use crate::{SyncStore, UpdateStore, VenueStore};

fn report(running: &str, last: Option<(&str, UpdateState, Option<&str>)>) -> UpdateReport {
    UpdateReport {
        running: running.into(),
        last: last.map(|(version, state, detail)| UpdateOutcome {
            version: version.into(),
            state,
            detail: detail.map(Into::into),
        }),
    }
}

pub fn gates_report_their_version_and_last_update(
    s: &(impl VenueStore + SyncStore + UpdateStore + ?Sized),
) {
    let venue = s.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
    let (_, gate1) = s.add_device(ORQ, venue.id, "Gate 1", now()).unwrap();
    let (_, gate2) = s.add_device(ORQ, venue.id, "Gate 2", now()).unwrap();
    let other_org = crate::domain::Orq(ORQ.0 + 1);
    let elsewhere = s.add_venue(other_org, "Louvre", "UTC", now()).unwrap();
    let (_, foreign) = s
        .add_device(other_org, elsewhere.id, "Gate X", now())
        .unwrap();

    let listed = s.device_versions(ORQ).unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|d| d.app_version.is_none() && d.last_update.is_none()));

    s.record_update_report(&gate1, &report("1.0.0", None), now())
        .unwrap();
    let later = now() + chrono::Duration::minutes(5);
    s.record_update_report(
        &gate1,
        &report(
            "1.0.0",
            Some(("1.1.0", UpdateState::RolledBack, Some("exited (3)"))),
        ),
        later,
    )
    .unwrap();
    s.record_update_report(
        &gate2,
        &report("1.1.0", Some(("1.1.0", UpdateState::Installed, None))),
        now(),
    )
    .unwrap();
    s.record_update_report(&foreign, &report("9.9.9", None), now())
        .unwrap();

    let listed = s.device_versions(ORQ).unwrap();
    let one = listed
        .iter()
        .find(|d| d.device_id == gate1.device_id)
        .unwrap();
    assert_eq!(one.app_version.as_deref(), Some("1.0.0"));
    assert_eq!(one.reported_at, Some(later));
    let last = one.last_update.as_ref().unwrap();
    assert_eq!(
        (last.version.as_str(), last.state, last.detail.as_deref()),
        ("1.1.0", UpdateState::RolledBack, Some("exited (3)"))
    );
    let two = listed
        .iter()
        .find(|d| d.device_id == gate2.device_id)
        .unwrap();
    assert_eq!(
        (
            two.app_version.as_deref(),
            two.last_update.as_ref().map(|u| u.state)
        ),
        (Some("1.1.0"), Some(UpdateState::Installed))
    );
    assert!(
        listed
            .iter()
            .all(|d| d.app_version.as_deref() != Some("9.9.9")),
        "another org's gate"
    );
    assert_eq!(
        s.device_versions(other_org).unwrap()[0]
            .app_version
            .as_deref(),
        Some("9.9.9")
    );
}

pub fn a_malformed_report_is_refused(s: &(impl VenueStore + SyncStore + UpdateStore + ?Sized)) {
    let venue = s.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
    let (_, gate) = s.add_device(ORQ, venue.id, "Gate 1", now()).unwrap();
    let cases = [
        report("1.0", None),
        report("1.0.0", Some(("latest", UpdateState::Installed, None))),
        report(
            "1.0.0",
            Some(("1.0.1", UpdateState::Refused, Some(&"x".repeat(201)))),
        ),
    ];
    for r in cases {
        assert_eq!(
            code_of(s.record_update_report(&gate, &r, now())),
            "INVALID_INPUT",
            "{r:?}"
        );
    }
    assert!(s.device_versions(ORQ).unwrap()[0].app_version.is_none());
}
