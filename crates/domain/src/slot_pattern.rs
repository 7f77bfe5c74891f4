//! Creating a season of slots at once (issue 16, the console's Slots page):
//! a weekly pattern (which weekdays, which times) over a date range expands
//! to slots, and a batch is planned against the venue's existing slots so
//! that running it twice creates nothing the second time.
//!
//! Slot times are the venue's wall clock. On a daylight-saving change a
//! wall-clock time may not exist (spring forward: 02:30 in Madrid on the
//! last Sunday of March); a slot starting or ending at such a time is never
//! created, it is reported as `NonexistentTime`. A time that happens twice
//! (autumn) is a real time and is kept (the gate's rules take the earlier).

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::slot::{check_capacity, NewSlot};
use super::{DomainError, VenueId};

/// The longest range one pattern may cover (a season; a year and a day).
pub const MAX_PATTERN_DAYS: i64 = 366;
/// The most slots one pattern may expand to.
pub const MAX_PATTERN_SLOTS: usize = 5_000;

/// A validated weekly pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyPattern {
    pub venue_id: VenueId,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub weekdays: Vec<Weekday>,
    /// (start, end) wall-clock times, each end after its start.
    pub times: Vec<(NaiveTime, NaiveTime)>,
    pub total_capacity: i64,
}

impl WeeklyPattern {
    /// Checks the range, the weekdays (1 = Monday … 7 = Sunday), the times
    /// and the capacity.
    pub fn validate(
        venue_id: VenueId,
        from: NaiveDate,
        to: NaiveDate,
        weekdays: &[u8],
        times: Vec<(NaiveTime, NaiveTime)>,
        total_capacity: i64,
    ) -> Result<Self, DomainError> {
        if to < from {
            return Err(DomainError::invalid(
                "date_to",
                "must not be before date_from",
            ));
        }
        if (to - from).num_days() >= MAX_PATTERN_DAYS {
            return Err(DomainError::invalid(
                "date_to",
                format!("a pattern covers at most {MAX_PATTERN_DAYS} days"),
            ));
        }
        if weekdays.is_empty() {
            return Err(DomainError::invalid(
                "weekdays",
                "name at least one weekday",
            ));
        }
        let mut days = Vec::new();
        for &d in weekdays {
            let day = match d {
                1 => Weekday::Mon,
                2 => Weekday::Tue,
                3 => Weekday::Wed,
                4 => Weekday::Thu,
                5 => Weekday::Fri,
                6 => Weekday::Sat,
                7 => Weekday::Sun,
                _ => {
                    return Err(DomainError::invalid(
                        "weekdays",
                        "each is 1 (Monday) to 7 (Sunday)",
                    ))
                }
            };
            if !days.contains(&day) {
                days.push(day);
            }
        }
        if times.is_empty() {
            return Err(DomainError::invalid(
                "times",
                "name at least one time range",
            ));
        }
        for (i, (start, end)) in times.iter().enumerate() {
            if end <= start {
                return Err(DomainError::invalid(
                    "times",
                    format!("range {}: the end must be after the start", i + 1),
                ));
            }
            if times[..i].iter().any(|(s, e)| s < end && start < e) {
                return Err(DomainError::invalid(
                    "times",
                    format!("range {} overlaps an earlier one", i + 1),
                ));
            }
        }
        check_capacity(total_capacity)?;
        let pattern = Self {
            venue_id,
            from,
            to,
            weekdays: days,
            times,
            total_capacity,
        };
        let count = pattern.dates().count() * pattern.times.len();
        if count > MAX_PATTERN_SLOTS {
            return Err(DomainError::invalid(
                "date_to",
                format!("the pattern makes {count} slots; at most {MAX_PATTERN_SLOTS} at once"),
            ));
        }
        Ok(pattern)
    }

    /// The dates of the range on the pattern's weekdays.
    fn dates(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.from
            .iter_days()
            .take_while(move |d| *d <= self.to)
            .filter(move |d| self.weekdays.contains(&d.weekday()))
    }

    /// Every slot of the pattern in date and time order, each either
    /// possible or a wall-clock time that does not exist in `tz`.
    pub fn expand(&self, tz: Tz) -> Vec<(NewSlot, Option<Outcome>)> {
        let exists = |date: NaiveDate, t: NaiveTime| {
            tz.from_local_datetime(&date.and_time(t))
                .earliest()
                .is_some()
        };
        let mut out = Vec::new();
        for date in self.dates() {
            for &(start_time, end_time) in &self.times {
                let slot = NewSlot {
                    venue_id: self.venue_id,
                    date,
                    start_time,
                    end_time,
                    total_capacity: self.total_capacity,
                };
                let skip = (!exists(date, start_time) || !exists(date, end_time))
                    .then_some(Outcome::NonexistentTime);
                out.push((slot, skip));
            }
        }
        out
    }
}

/// What a pattern does with one of its slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// New: created (or, in a preview, would be).
    Create,
    /// The same slot (start and end) is there already: left as it is.
    Exists,
    /// Another slot of the venue overlaps it that day: not created.
    Clash,
    /// Its start or end does not exist on the venue's clock that day (DST).
    NonexistentTime,
}

/// One slot of a pattern's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PlannedSlot {
    pub date: NaiveDate,
    #[serde(with = "super::slot::hms")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "09:00:00"))]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub start_time: NaiveTime,
    #[serde(with = "super::slot::hms")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "12:00:00"))]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub end_time: NaiveTime,
    pub outcome: Outcome,
}

impl PlannedSlot {
    pub fn new(slot: &NewSlot, outcome: Outcome) -> Self {
        Self {
            date: slot.date,
            start_time: slot.start_time,
            end_time: slot.end_time,
            outcome,
        }
    }
}

/// A slot of the console's month calendar: the slot and how many of its
/// reservations were admitted at the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct BoardSlot {
    pub slot: super::Slot,
    pub admitted_count: i64,
}

/// Plans the expanded pattern against the venue's slots on those dates
/// (`existing`: date, start, end) and against itself.
pub fn plan_pattern(
    expanded: Vec<(NewSlot, Option<Outcome>)>,
    existing: &[(NaiveDate, NaiveTime, NaiveTime)],
) -> Vec<(NewSlot, Outcome)> {
    expanded
        .into_iter()
        .map(|(slot, skip)| {
            let outcome = skip.unwrap_or_else(|| {
                let same_day = existing.iter().filter(|(d, _, _)| *d == slot.date);
                let mut outcome = Outcome::Create;
                for &(_, s, e) in same_day {
                    if s == slot.start_time && e == slot.end_time {
                        outcome = Outcome::Exists;
                        break;
                    }
                    if s < slot.end_time && slot.start_time < e {
                        outcome = Outcome::Clash;
                    }
                }
                outcome
            });
            (slot, outcome)
        })
        .collect()
}

#[cfg(test)]
// Case tables are rows of tuples on purpose: one line per case reads best.
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn t(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }
    fn range(a: &str, b: &str) -> (NaiveTime, NaiveTime) {
        (t(a), t(b))
    }
    const TUE_SUN: [u8; 6] = [2, 3, 4, 5, 6, 7];

    #[test]
    fn a_pattern_expands_on_its_weekdays_only() {
        // (from, to, weekdays, ranges, expected count, first date, last date)
        let cases: &[(&str, &str, &[u8], usize, usize, &str, &str)] = &[
            // Mon 2025-12-01 .. Sun 2025-12-14, Tue–Sun, three a day: 12 days.
            (
                "2025-12-01",
                "2025-12-14",
                &TUE_SUN,
                3,
                36,
                "2025-12-02",
                "2025-12-14",
            ),
            // Mondays only in the same fortnight: two.
            (
                "2025-12-01",
                "2025-12-14",
                &[1],
                1,
                2,
                "2025-12-01",
                "2025-12-08",
            ),
            // One day that is not on the pattern: nothing.
            ("2025-12-01", "2025-12-01", &TUE_SUN, 3, 0, "", ""),
            // A repeated weekday counts once.
            (
                "2025-12-02",
                "2025-12-02",
                &[2, 2],
                2,
                2,
                "2025-12-02",
                "2025-12-02",
            ),
        ];
        let all = [
            range("09:00", "12:00"),
            range("12:00", "15:00"),
            range("15:00", "18:00"),
        ];
        for &(from, to, days, n_ranges, count, first, last) in cases {
            let p = WeeklyPattern::validate(
                VenueId(1),
                d(from),
                d(to),
                days,
                all[..n_ranges].to_vec(),
                50,
            )
            .unwrap();
            let slots = p.expand(chrono_tz::Europe::Madrid);
            assert_eq!(slots.len(), count, "{from}..{to} {days:?}");
            if count > 0 {
                assert_eq!(slots[0].0.date, d(first));
                assert_eq!(slots[count - 1].0.date, d(last));
                assert!(slots.iter().all(|(s, skip)| skip.is_none()
                    && s.total_capacity == 50
                    && p.weekdays.contains(&s.date.weekday())));
            }
        }
    }

    #[test]
    fn a_wall_clock_time_that_dst_skips_is_never_created() {
        // (tz, date, range, skipped?)
        let cases = [
            // Madrid springs forward 2026-03-29 02:00 -> 03:00.
            (
                chrono_tz::Europe::Madrid,
                "2026-03-29",
                range("02:30", "04:00"),
                true,
            ),
            (
                chrono_tz::Europe::Madrid,
                "2026-03-29",
                range("01:00", "02:30"),
                true,
            ),
            (
                chrono_tz::Europe::Madrid,
                "2026-03-29",
                range("01:00", "03:00"),
                false,
            ),
            (
                chrono_tz::Europe::Madrid,
                "2026-03-29",
                range("09:00", "12:00"),
                false,
            ),
            // The day before: 02:30 exists.
            (
                chrono_tz::Europe::Madrid,
                "2026-03-28",
                range("02:30", "04:00"),
                false,
            ),
            // Autumn: 02:30 happens twice on 2026-10-25; it is a real time.
            (
                chrono_tz::Europe::Madrid,
                "2026-10-25",
                range("02:30", "04:00"),
                false,
            ),
            // New York springs forward 2026-03-08 02:00 -> 03:00.
            (
                chrono_tz::America::New_York,
                "2026-03-08",
                range("02:15", "05:00"),
                true,
            ),
            // UTC never skips.
            (chrono_tz::UTC, "2026-03-29", range("02:30", "04:00"), false),
        ];
        for (tz, day, times, skipped) in cases {
            let weekday = d(day).weekday().number_from_monday() as u8;
            let p =
                WeeklyPattern::validate(VenueId(1), d(day), d(day), &[weekday], vec![times], 10)
                    .unwrap();
            let slots = p.expand(tz);
            assert_eq!(slots.len(), 1);
            assert_eq!(
                slots[0].1 == Some(Outcome::NonexistentTime),
                skipped,
                "{tz} {day} {times:?}"
            );
        }
    }

    #[test]
    fn planning_skips_identical_slots_and_refuses_overlaps() {
        let p = WeeklyPattern::validate(
            VenueId(1),
            d("2025-12-02"),
            d("2025-12-03"),
            &TUE_SUN,
            vec![range("09:00", "12:00"), range("12:00", "15:00")],
            50,
        )
        .unwrap();
        // (existing slots, expected outcomes in order: 02 09-12, 02 12-15, 03 09-12, 03 12-15)
        let cases: &[(&[(&str, &str, &str)], [Outcome; 4])] = &[
            (&[], [Outcome::Create; 4]),
            (
                &[("2025-12-02", "09:00", "12:00")],
                [
                    Outcome::Exists,
                    Outcome::Create,
                    Outcome::Create,
                    Outcome::Create,
                ],
            ),
            // Same start, other end: a different slot that overlaps.
            (
                &[("2025-12-03", "12:00", "13:00")],
                [
                    Outcome::Create,
                    Outcome::Create,
                    Outcome::Create,
                    Outcome::Clash,
                ],
            ),
            // Touching (ends when the next starts) is no overlap.
            (
                &[
                    ("2025-12-02", "08:00", "09:00"),
                    ("2025-12-03", "11:00", "12:30"),
                ],
                [
                    Outcome::Create,
                    Outcome::Create,
                    Outcome::Clash,
                    Outcome::Clash,
                ],
            ),
        ];
        for (existing, expected) in cases {
            let existing: Vec<_> = existing
                .iter()
                .map(|(a, b, c)| (d(a), t(b), t(c)))
                .collect();
            let planned = plan_pattern(p.expand(chrono_tz::UTC), &existing);
            let outcomes: Vec<Outcome> = planned.iter().map(|(_, o)| *o).collect();
            assert_eq!(outcomes, expected, "{existing:?}");
        }
        // A DST skip stays a skip whatever exists.
        let skip = vec![(
            p.expand(chrono_tz::UTC)[0].0.clone(),
            Some(Outcome::NonexistentTime),
        )];
        assert_eq!(plan_pattern(skip, &[])[0].1, Outcome::NonexistentTime);
    }

    #[test]
    fn a_pattern_is_validated() {
        let ok = vec![range("09:00", "12:00")];
        // (from, to, weekdays, ranges, capacity, field)
        let cases: Vec<(&str, &str, Vec<u8>, Vec<(NaiveTime, NaiveTime)>, i64, &str)> = vec![
            (
                "2025-12-02",
                "2025-12-01",
                vec![2],
                ok.clone(),
                10,
                "date_to",
            ),
            (
                "2025-01-01",
                "2026-01-02",
                vec![2],
                ok.clone(),
                10,
                "date_to",
            ),
            (
                "2025-12-01",
                "2025-12-31",
                vec![],
                ok.clone(),
                10,
                "weekdays",
            ),
            (
                "2025-12-01",
                "2025-12-31",
                vec![0],
                ok.clone(),
                10,
                "weekdays",
            ),
            (
                "2025-12-01",
                "2025-12-31",
                vec![8],
                ok.clone(),
                10,
                "weekdays",
            ),
            ("2025-12-01", "2025-12-31", vec![2], vec![], 10, "times"),
            (
                "2025-12-01",
                "2025-12-31",
                vec![2],
                vec![range("12:00", "09:00")],
                10,
                "times",
            ),
            (
                "2025-12-01",
                "2025-12-31",
                vec![2],
                vec![range("09:00", "12:00"), range("11:00", "13:00")],
                10,
                "times",
            ),
            (
                "2025-12-01",
                "2025-12-31",
                vec![2],
                ok.clone(),
                0,
                "total_capacity",
            ),
        ];
        for (from, to, days, times, cap, field) in cases {
            match WeeklyPattern::validate(VenueId(1), d(from), d(to), &days, times, cap) {
                Err(DomainError::InvalidInput { field: f, .. }) => {
                    assert_eq!(f, field, "{from}..{to} {days:?}")
                }
                other => panic!("{from}..{to} {days:?}: {other:?}"),
            }
        }
        // 365 days with 14 ranges a day is too many slots at once.
        let many: Vec<_> = (0..14u32)
            .map(|h| {
                (
                    NaiveTime::from_hms_opt(h, 0, 0).unwrap(),
                    NaiveTime::from_hms_opt(h, 30, 0).unwrap(),
                )
            })
            .collect();
        assert!(WeeklyPattern::validate(
            VenueId(1),
            d("2025-01-01"),
            d("2025-12-31"),
            &[1, 2, 3, 4, 5, 6, 7],
            many,
            10
        )
        .is_err());
    }
}
