//! Venues (where a gate stands and which clock "today" is read on) and the
//! people who operate gates.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{DomainError, Gate, OperatorId, Orq, VenueId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Venue {
    pub id: VenueId,
    pub orq: Orq,
    pub name: String,
    /// IANA zone, e.g. `Europe/Madrid`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "Europe/Madrid"))]
    pub timezone: Tz,
    /// How its gates judge the slot window (the server's checks too).
    #[serde(flatten)]
    pub gate: GateSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The most grace a venue may give on either side of a slot, in minutes.
pub const MAX_GRACE_MINUTES: i64 = 240;
/// The grace of a venue nobody has set: 30 minutes either side.
pub const DEFAULT_GRACE_MINUTES: i64 = 30;

/// A venue's gate settings: how long before its slot starts a holder may
/// enter, and how long after it ends. Every verdict on a ticket reserved at
/// the venue uses these (`gate_verdict` reads them from the venue row), at
/// the server, in `entrada gate verify` and on each gate's replica.
/// Each is 0 to [`MAX_GRACE_MINUTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "RawGateSettings")]
pub struct GateSettings {
    /// Minutes before its slot starts that a holder may enter (0 to 240).
    #[cfg_attr(feature = "openapi", schema(example = 30, minimum = 0, maximum = 240))]
    early_grace_minutes: i64,
    /// Minutes after its slot ends that a holder may still enter (0 to 240).
    #[cfg_attr(feature = "openapi", schema(example = 30, minimum = 0, maximum = 240))]
    late_grace_minutes: i64,
    /// A holder who left may come back in (`ADMIT` marked re-entry).
    #[cfg_attr(feature = "openapi", schema(example = false))]
    reentry_allowed: bool,
    /// Places of each of today's open slots the server leases to each paired
    /// gate for walk-ups booked offline (0 to 50; 0: walk-ups only online).
    #[cfg_attr(feature = "openapi", schema(example = 2, minimum = 0, maximum = 50))]
    walkup_lease_places: i64,
    /// Minutes after a slot starts when its unverified reservations become
    /// NO_SHOW and free their places (1 to 1440; null: never).
    #[cfg_attr(feature = "openapi", schema(example = 30, minimum = 1, maximum = 1440))]
    no_show_release_minutes: Option<i64>,
    /// People inside at once (1 to 1000000; null: no limit).
    #[cfg_attr(
        feature = "openapi",
        schema(example = 500, minimum = 1, maximum = 1000000)
    )]
    occupancy_limit: Option<i64>,
    /// Closing time on the venue's clock (`HH:MM:SS`): from then on the
    /// server checks everyone still inside out (null: none).
    #[serde(default, with = "crate::venue_ops::opt_time")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "18:00:00"))]
    closing_time: Option<chrono::NaiveTime>,
}

#[derive(Deserialize)]
struct RawGateSettings {
    early_grace_minutes: i64,
    late_grace_minutes: i64,
    #[serde(default)]
    reentry_allowed: bool,
    #[serde(default)]
    walkup_lease_places: i64,
    #[serde(default)]
    no_show_release_minutes: Option<i64>,
    #[serde(default)]
    occupancy_limit: Option<i64>,
    #[serde(default, with = "crate::venue_ops::opt_time")]
    closing_time: Option<chrono::NaiveTime>,
}

impl TryFrom<RawGateSettings> for GateSettings {
    type Error = DomainError;
    fn try_from(raw: RawGateSettings) -> Result<Self, DomainError> {
        Self::new(raw.early_grace_minutes, raw.late_grace_minutes)?.with_ops(
            crate::venue_ops::VenueOps {
                reentry_allowed: raw.reentry_allowed,
                walkup_lease_places: raw.walkup_lease_places,
                no_show_release_minutes: raw.no_show_release_minutes,
                occupancy_limit: raw.occupancy_limit,
                closing_time: raw.closing_time,
            },
        )
    }
}

impl Default for GateSettings {
    fn default() -> Self {
        Self {
            early_grace_minutes: DEFAULT_GRACE_MINUTES,
            late_grace_minutes: DEFAULT_GRACE_MINUTES,
            reentry_allowed: false,
            walkup_lease_places: 0,
            no_show_release_minutes: None,
            occupancy_limit: None,
            closing_time: None,
        }
    }
}

fn grace(field: &'static str, minutes: i64) -> Result<i64, DomainError> {
    if (0..=MAX_GRACE_MINUTES).contains(&minutes) {
        Ok(minutes)
    } else {
        Err(DomainError::invalid(
            field,
            format!("must be 0 to {MAX_GRACE_MINUTES} minutes"),
        ))
    }
}

impl GateSettings {
    pub fn new(early_grace_minutes: i64, late_grace_minutes: i64) -> Result<Self, DomainError> {
        Ok(Self {
            early_grace_minutes: grace("early_grace_minutes", early_grace_minutes)?,
            late_grace_minutes: grace("late_grace_minutes", late_grace_minutes)?,
            ..Self::default()
        })
    }

    /// These settings with the venue operations `ops` (checked).
    pub fn with_ops(self, ops: crate::venue_ops::VenueOps) -> Result<Self, DomainError> {
        let ops = ops.checked()?;
        Ok(Self {
            reentry_allowed: ops.reentry_allowed,
            walkup_lease_places: ops.walkup_lease_places,
            no_show_release_minutes: ops.no_show_release_minutes,
            occupancy_limit: ops.occupancy_limit,
            closing_time: ops.closing_time,
            ..self
        })
    }

    /// The venue's operations settings (re-entry, leases, no-shows, limit).
    pub fn ops(self) -> crate::venue_ops::VenueOps {
        crate::venue_ops::VenueOps {
            reentry_allowed: self.reentry_allowed,
            walkup_lease_places: self.walkup_lease_places,
            no_show_release_minutes: self.no_show_release_minutes,
            occupancy_limit: self.occupancy_limit,
            closing_time: self.closing_time,
        }
    }

    pub fn early_grace_minutes(self) -> i64 {
        self.early_grace_minutes
    }

    pub fn late_grace_minutes(self) -> i64 {
        self.late_grace_minutes
    }

    /// The gate a scan at `venue_id` (`None`: no venue checked) is judged by.
    pub fn gate(self, venue_id: Option<VenueId>) -> Gate {
        Gate {
            venue_id,
            early_grace: chrono::Duration::minutes(self.early_grace_minutes),
            late_grace: chrono::Duration::minutes(self.late_grace_minutes),
        }
    }

    /// These settings with `patch` applied (unchanged when it names no gate
    /// setting); a value out of bounds changes nothing.
    pub fn patched(self, patch: &VenuePatch) -> Result<Self, DomainError> {
        if patch.early_grace_minutes.is_none()
            && patch.late_grace_minutes.is_none()
            && !crate::venue_ops::names_ops(patch)
        {
            return Ok(self);
        }
        Self::new(
            patch
                .early_grace_minutes
                .unwrap_or(self.early_grace_minutes),
            patch.late_grace_minutes.unwrap_or(self.late_grace_minutes),
        )?
        .with_ops(self.ops().patched(patch))
    }
}

/// What an admin changes on a venue (`PATCH /api/admin/venues/{id}`): its
/// name, its time zone and its gate settings; the fields named change, the
/// others stay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VenuePatch {
    /// 1 to 200 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "Museo del Prado", min_length = 1, max_length = 200)
    )]
    pub name: Option<String>,
    /// IANA time zone. Slot times are read on this clock, so a new zone is
    /// refused (409 VENUE_HAS_BOOKINGS_AHEAD) while slots from yesterday on have
    /// bookings.
    #[cfg_attr(feature = "openapi", schema(example = "Europe/Lisbon"))]
    pub timezone: Option<String>,
    /// Minutes before its slot starts that a holder may enter (0 to 240).
    #[cfg_attr(feature = "openapi", schema(example = 10, minimum = 0, maximum = 240))]
    pub early_grace_minutes: Option<i64>,
    /// Minutes after its slot ends that a holder may still enter (0 to 240).
    #[cfg_attr(feature = "openapi", schema(example = 30, minimum = 0, maximum = 240))]
    pub late_grace_minutes: Option<i64>,
    /// A holder who left may come back in.
    #[cfg_attr(feature = "openapi", schema(example = true))]
    pub reentry_allowed: Option<bool>,
    /// Places per gate per open slot leased for offline walk-ups (0 to 50).
    #[cfg_attr(feature = "openapi", schema(example = 2, minimum = 0, maximum = 50))]
    pub walkup_lease_places: Option<i64>,
    /// Minutes after a slot starts when its unverified reservations become
    /// NO_SHOW (1 to 1440); `null`: never.
    #[serde(default, deserialize_with = "crate::venue_ops::present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, example = 30, minimum = 1, maximum = 1440))]
    pub no_show_release_minutes: Option<Option<i64>>,
    /// People inside at once (1 to 1000000); `null`: no limit.
    #[serde(default, deserialize_with = "crate::venue_ops::present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, example = 500, minimum = 1, maximum = 1000000))]
    pub occupancy_limit: Option<Option<i64>>,
    /// Closing time on the venue's clock (`HH:MM` or `HH:MM:SS`): from
    /// then on the server checks everyone still inside out; `null`: none.
    #[serde(default, deserialize_with = "crate::venue_ops::opt_time::present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "18:00"))]
    pub closing_time: Option<Option<chrono::NaiveTime>>,
}

impl VenuePatch {
    /// Whether the patch names no field at all.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.timezone.is_none()
            && self.early_grace_minutes.is_none()
            && self.late_grace_minutes.is_none()
            && !crate::venue_ops::names_ops(self)
    }
}

impl Venue {
    /// The time zone `patch` moves this venue to, if it names one that
    /// differs, with the first date whose booked slots hold the move back:
    /// the day before today on either clock, the earlier one (a slot of
    /// yesterday may still be open for entry: a late grace of up to 240
    /// minutes carries its window past midnight).
    pub fn zone_change(
        &self,
        patch: &VenuePatch,
        now: DateTime<Utc>,
    ) -> Result<Option<(Tz, NaiveDate)>, DomainError> {
        let Some(raw) = &patch.timezone else {
            return Ok(None);
        };
        let zone = parse_timezone(raw)?;
        if zone == self.timezone {
            return Ok(None);
        }
        let today = |tz: Tz| now.with_timezone(&tz).date_naive();
        let from = today(self.timezone).min(today(zone)) - chrono::Duration::days(1);
        Ok(Some((zone, from)))
    }

    /// This venue with `patch` applied at `now`. `booked_slots_ahead`: how
    /// many of its slots from the date `zone_change` gave on have bookings
    /// (only read when the zone changes).
    pub fn patched(
        &self,
        patch: &VenuePatch,
        booked_slots_ahead: u64,
        now: DateTime<Utc>,
    ) -> Result<Venue, DomainError> {
        if patch.is_empty() {
            return Err(DomainError::invalid(
                "venue",
                "name a field to change: name, timezone, early_grace_minutes, late_grace_minutes \
                 or a venue operations setting",
            ));
        }
        let mut next = self.clone();
        if let Some(name) = &patch.name {
            next.name = validate_name("name", name)?;
        }
        if let Some((zone, from)) = self.zone_change(patch, now)? {
            if booked_slots_ahead > 0 {
                return Err(DomainError::VenueHasBookingsAhead {
                    slots: booked_slots_ahead,
                    from,
                });
            }
            next.timezone = zone;
        }
        next.gate = self.gate.patched(patch)?;
        next.updated_at = now;
        Ok(next)
    }
}

pub fn parse_timezone(raw: &str) -> Result<Tz, DomainError> {
    raw.trim().parse::<Tz>().map_err(|_| {
        DomainError::invalid(
            "timezone",
            "must be an IANA time zone such as Europe/Madrid",
        )
    })
}

pub fn validate_name(field: &'static str, raw: &str) -> Result<String, DomainError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must be 1 to 200 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Operator PINs: 4 to 8 digits, typed on a touch screen.
pub fn validate_pin(raw: &str) -> Result<&str, DomainError> {
    if (4..=8).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit()) {
        Ok(raw)
    } else {
        Err(DomainError::invalid("pin", "must be 4 to 8 digits"))
    }
}

/// The shortest PIN a role may have: whoever can change slots and a gate's
/// settings (supervisor, admin) needs 6 digits, a million guesses instead
/// of ten thousand.
pub fn min_pin_len(role: Role) -> usize {
    if role.can_manage_slots() {
        6
    } else {
        4
    }
}

/// A PIN as `role` may set it.
pub fn validate_pin_for(role: Role, raw: &str) -> Result<&str, DomainError> {
    let min = min_pin_len(role);
    if (min..=8).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit()) {
        Ok(raw)
    } else {
        Err(DomainError::invalid(
            "pin",
            format!("a {} PIN must be {min} to 8 digits", role.as_str()),
        ))
    }
}

/// Wrong PINs an operator may type before being locked.
pub const PIN_FREE_ATTEMPTS: u32 = 5;
/// The first lock, after the fifth wrong PIN; each further one doubles it.
pub const PIN_FIRST_LOCK_SECS: i64 = 30;
/// The longest lock: a locked-out operator waits at most this long.
pub const PIN_MAX_LOCK_SECS: i64 = 15 * 60;

/// One operator's wrong PINs in a row, and the lock they earned (kept in the
/// database that checks the PIN: the server's, or a gate's replica).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PinAttempts {
    pub failures: u32,
    pub locked_until: Option<DateTime<Utc>>,
}

impl PinAttempts {
    /// How long `failures` wrong PINs in a row lock the operator:
    /// nothing for the first four, then 30 s, 1 min, 2 min, … up to 15 min.
    pub fn lock_after(failures: u32) -> Option<chrono::Duration> {
        let over = failures.checked_sub(PIN_FREE_ATTEMPTS)?;
        let secs = PIN_FIRST_LOCK_SECS
            .saturating_mul(1i64.checked_shl(over.min(32)).unwrap_or(i64::MAX))
            .min(PIN_MAX_LOCK_SECS);
        Some(chrono::Duration::seconds(secs))
    }

    /// Starts a PIN check at `now`. Refused with PIN_LOCKED while locked
    /// (the PIN is not even looked at). Otherwise returns the state to store
    /// while the PIN is checked: the attempt counts as wrong until it proves
    /// right, so attempts made in parallel cannot slip past the count.
    pub fn begin(self, now: DateTime<Utc>) -> Result<PinAttempts, DomainError> {
        if let Some(until) = self.locked_until.filter(|until| *until > now) {
            let ms = (until - now).num_milliseconds();
            return Err(DomainError::PinLocked {
                locked_until: until,
                retry_after_secs: u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1),
            });
        }
        let failures = self.failures.saturating_add(1);
        Ok(PinAttempts {
            failures,
            locked_until: Self::lock_after(failures).map(|d| now + d),
        })
    }
}

/// The Argon2id parameters PINs are hashed with: the app's own, fixed here
/// (not the crate's default, which may change under us).
pub const PIN_HASH_M_KIB: u32 = 19_456;
pub const PIN_HASH_T: u32 = 2;
pub const PIN_HASH_P: u32 = 1;
/// The most a stored PIN hash may ask for before it is run at all. Hashes
/// reach gates from the server: a malicious or broken one must not make a
/// gate spend gigabytes or minutes on a sign-in.
pub const PIN_HASH_MAX_M_KIB: u32 = 65_536;
pub const PIN_HASH_MAX_T: u32 = 4;
pub const PIN_HASH_MAX_P: u32 = 4;

/// What a stored PIN hash (a PHC string) says about how to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinHashParams<'a> {
    /// `argon2id`, `argon2i`, …
    pub algorithm: &'a str,
    /// Argon2's version, 19 (0x13) for the current one.
    pub version: Option<u32>,
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

/// Whether a PIN hash may be run here: Argon2id v19 within the bounds.
pub fn check_pin_hash(params: &PinHashParams<'_>) -> Result<(), DomainError> {
    let refuse = |reason| Err(DomainError::PinHashRefused { reason });
    if params.algorithm != "argon2id" {
        return refuse("not an Argon2id hash");
    }
    if params.version.is_some_and(|v| v != 0x13) {
        return refuse("unsupported Argon2 version");
    }
    if params.m_kib > PIN_HASH_MAX_M_KIB {
        return refuse("asks for more memory than a gate gives a PIN check");
    }
    if params.t > PIN_HASH_MAX_T {
        return refuse("asks for more passes than a gate gives a PIN check");
    }
    if params.p > PIN_HASH_MAX_P {
        return refuse("asks for more lanes than a gate gives a PIN check");
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Operator,
    /// Operator + slot capacity and status.
    Supervisor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Operator => "operator",
            Self::Supervisor => "supervisor",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "customer" => Ok(Self::Customer),
            "operator" => Ok(Self::Operator),
            "supervisor" => Ok(Self::Supervisor),
            "admin" => Ok(Self::Admin),
            _ => Err(DomainError::invalid(
                "role",
                "must be one of customer, operator, supervisor, admin",
            )),
        }
    }

    pub fn can_verify(self) -> bool {
        matches!(self, Self::Operator | Self::Supervisor | Self::Admin)
    }

    pub fn can_manage_slots(self) -> bool {
        matches!(self, Self::Supervisor | Self::Admin)
    }

    /// Whether a gate may sign this role in without a PIN (`ENTRADA_OPERATOR`
    /// at start): operators only; whoever changes capacity types a PIN.
    pub fn may_start_without_pin(self) -> bool {
        self.can_verify() && !self.can_manage_slots()
    }
}

/// A person who signs in at a gate. The PIN hash is never serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Operator {
    pub id: OperatorId,
    pub orq: Orq,
    pub role: Role,
    pub display_name: String,
    #[serde(skip)]
    pub pin_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when an admin or supervisor deactivated them: they sign in
    /// nowhere (server, gates after their next sync) and hold no token.
    #[serde(default)]
    pub deactivated_at: Option<DateTime<Utc>>,
}

impl Operator {
    /// Not deactivated: may sign in (PIN or start) and hold tokens.
    pub fn is_active(&self) -> bool {
        self.deactivated_at.is_none()
    }

    /// Closing time or an evacuation called at a gate: an active
    /// supervisor or admin only.
    pub fn may_check_everyone_out(&self) -> bool {
        self.is_active() && self.role.can_manage_slots()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_active_supervisor_or_admin_checks_everyone_out() {
        let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        // (role, deactivated) → may
        for (role, deactivated, want) in [
            (Role::Supervisor, false, true),
            (Role::Admin, false, true),
            (Role::Operator, false, false),
            (Role::Customer, false, false),
            (Role::Supervisor, true, false),
            (Role::Admin, true, false),
        ] {
            let o = Operator {
                id: OperatorId(1),
                orq: Orq(1),
                role,
                display_name: "X".into(),
                pin_hash: None,
                created_at: at,
                updated_at: at,
                deactivated_at: deactivated.then_some(at),
            };
            assert_eq!(o.may_check_everyone_out(), want, "{role:?} {deactivated}");
        }
    }

    #[test]
    fn who_may_start_without_a_pin() {
        for (role, allowed) in [
            (Role::Customer, false),
            (Role::Operator, true),
            (Role::Supervisor, false),
            (Role::Admin, false),
        ] {
            assert_eq!(role.may_start_without_pin(), allowed, "{role:?}");
        }
    }

    #[test]
    fn venue_patches_name_zone_and_settings() {
        use chrono::TimeZone;
        let madrid: Tz = "Europe/Madrid".parse().unwrap();
        let before = Venue {
            id: VenueId(1),
            orq: Orq(1),
            name: "Prado".into(),
            timezone: madrid,
            gate: GateSettings::default(),
            created_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            updated_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        };
        // 23:30 UTC on 1 March: already 2 March in Madrid, still 1 March in Lisbon.
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 23, 30, 0).unwrap();
        let patch = |json: &str| serde_json::from_str::<VenuePatch>(json).unwrap();
        // (name, patch, booked slots ahead) → (name, zone, early grace) after, or the error code
        type After = Result<(&'static str, &'static str, i64), &'static str>;
        let cases: [(&str, &str, u64, After); 9] = [
            (
                "rename",
                r#"{"name": "  Museo del Prado "}"#,
                0,
                Ok(("Museo del Prado", "Europe/Madrid", 30)),
            ),
            ("empty name", r#"{"name": "  "}"#, 0, Err("INVALID_INPUT")),
            (
                "new zone, nothing booked",
                r#"{"timezone": "Europe/Lisbon"}"#,
                0,
                Ok(("Prado", "Europe/Lisbon", 30)),
            ),
            (
                "new zone, bookings ahead",
                r#"{"timezone": "Europe/Lisbon"}"#,
                3,
                Err("VENUE_HAS_BOOKINGS_AHEAD"),
            ),
            (
                "same zone, bookings ahead",
                r#"{"timezone": "Europe/Madrid"}"#,
                3,
                Ok(("Prado", "Europe/Madrid", 30)),
            ),
            (
                "no such zone",
                r#"{"timezone": "Mars/Olympus"}"#,
                0,
                Err("INVALID_INPUT"),
            ),
            (
                "with a setting",
                r#"{"name": "P", "early_grace_minutes": 5}"#,
                0,
                Ok(("P", "Europe/Madrid", 5)),
            ),
            (
                "bad setting refuses the rename",
                r#"{"name": "P", "early_grace_minutes": 500}"#,
                0,
                Err("INVALID_INPUT"),
            ),
            ("nothing named", "{}", 0, Err("INVALID_INPUT")),
        ];
        for (name, json, booked, expected) in cases {
            let got = before
                .patched(&patch(json), booked, now)
                .map(|v| {
                    assert_eq!(v.updated_at, now, "{name}");
                    (
                        v.name,
                        v.timezone.name().to_owned(),
                        v.gate.early_grace_minutes(),
                    )
                })
                .map_err(|e| e.code());
            let expected = expected.map(|(n, z, e)| (n.to_owned(), z.to_owned(), e));
            assert_eq!(got, expected, "{name}");
        }
        // The guard starts the day before the earlier "today" of the two
        // clocks (1 March in Lisbon): a slot of 28 February may still be open
        // for entry past midnight.
        let (zone, from) = before
            .zone_change(&patch(r#"{"timezone": "Europe/Lisbon"}"#), now)
            .unwrap()
            .unwrap();
        assert_eq!(zone.name(), "Europe/Lisbon");
        assert_eq!(from, NaiveDate::from_ymd_opt(2026, 2, 28).unwrap());
        assert_eq!(
            before
                .zone_change(&patch(r#"{"timezone": "Europe/Madrid"}"#), now)
                .unwrap(),
            None,
            "the same zone is no change"
        );
        match before.patched(&patch(r#"{"timezone": "UTC"}"#), 2, now) {
            Err(DomainError::VenueHasBookingsAhead { slots: 2, from }) => {
                assert_eq!(from, NaiveDate::from_ymd_opt(2026, 2, 28).unwrap())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gate_settings_bounds_and_patches() {
        let set = |e, l| GateSettings::new(e, l).unwrap();
        assert_eq!(GateSettings::default(), set(30, 30));
        let patch = |e, l| VenuePatch {
            early_grace_minutes: e,
            late_grace_minutes: l,
            ..Default::default()
        };
        // (name, before, patch) → the settings after, or the refused field
        let cases: [(&str, GateSettings, VenuePatch, Result<GateSettings, &str>); 10] = [
            (
                "early only",
                set(30, 30),
                patch(Some(10), None),
                Ok(set(10, 30)),
            ),
            (
                "late only",
                set(30, 30),
                patch(None, Some(5)),
                Ok(set(30, 5)),
            ),
            (
                "both",
                set(30, 30),
                patch(Some(0), Some(240)),
                Ok(set(0, 240)),
            ),
            (
                "zero is a grace",
                set(30, 30),
                patch(Some(0), Some(0)),
                Ok(set(0, 0)),
            ),
            (
                "the same again",
                set(10, 5),
                patch(Some(10), None),
                Ok(set(10, 5)),
            ),
            (
                "no gate field named: unchanged",
                set(10, 5),
                patch(None, None),
                Ok(set(10, 5)),
            ),
            (
                "early above 240",
                set(30, 30),
                patch(Some(241), None),
                Err("early_grace_minutes"),
            ),
            (
                "early negative",
                set(30, 30),
                patch(Some(-1), None),
                Err("early_grace_minutes"),
            ),
            (
                "late above 240",
                set(30, 30),
                patch(None, Some(241)),
                Err("late_grace_minutes"),
            ),
            (
                "late huge",
                set(30, 30),
                patch(Some(10), Some(i64::MAX)),
                Err("late_grace_minutes"),
            ),
        ];
        for (name, before, patch, expected) in cases {
            let got = before.patched(&patch).map_err(|e| match e {
                DomainError::InvalidInput { field, .. } => field,
                other => panic!("{name}: {other:?}"),
            });
            assert_eq!(got, expected, "{name}");
        }
        // The bounds hold for whatever reaches a venue: rows and JSON too.
        assert!(GateSettings::new(241, 0).is_err());
        assert!(GateSettings::new(0, -5).is_err());
        assert!(serde_json::from_str::<GateSettings>(
            r#"{"early_grace_minutes": 300, "late_grace_minutes": 30}"#
        )
        .is_err());
        assert!(
            serde_json::from_str::<VenuePatch>(r#"{"early_grace": 10}"#).is_err(),
            "unknown fields are refused"
        );
        let g = set(10, 45).gate(Some(VenueId(3)));
        assert_eq!(
            (g.venue_id, g.early_grace, g.late_grace),
            (
                Some(VenueId(3)),
                chrono::Duration::minutes(10),
                chrono::Duration::minutes(45)
            )
        );
    }

    #[test]
    fn timezones() {
        assert_eq!(
            parse_timezone("Europe/Madrid").unwrap(),
            chrono_tz::Europe::Madrid
        );
        assert_eq!(
            parse_timezone(" Pacific/Kiritimati ").unwrap(),
            chrono_tz::Pacific::Kiritimati
        );
        for bad in ["", "Mars/Olympus", "CEST+2", "europe madrid"] {
            assert_eq!(
                parse_timezone(bad).unwrap_err().code(),
                "INVALID_INPUT",
                "{bad}"
            );
        }
    }

    #[test]
    fn roles() {
        assert!(Role::Supervisor.can_manage_slots() && Role::Supervisor.can_verify());
        assert!(!Role::Operator.can_manage_slots() && Role::Operator.can_verify());
        assert!(!Role::Customer.can_verify());
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn pins() {
        for ok in ["1234", "00000000"] {
            assert!(validate_pin(ok).is_ok(), "{ok}");
        }
        for bad in ["123", "123456789", "12a4", "", "١٢٣٤"] {
            assert!(validate_pin(bad).is_err(), "{bad}");
        }
    }

    /// (role, PIN) → may it be set?
    #[test]
    fn pins_by_role() {
        use Role::*;
        for (role, pin, ok) in [
            (Operator, "1234", true),
            (Operator, "12345678", true),
            (Supervisor, "1234", false),
            (Supervisor, "12345", false),
            (Supervisor, "123456", true),
            (Supervisor, "12345678", true),
            (Supervisor, "123456789", false),
            (Supervisor, "12345a", false),
            (Admin, "12345", false),
            (Admin, "654321", true),
        ] {
            assert_eq!(validate_pin_for(role, pin).is_ok(), ok, "{role:?} {pin}");
        }
    }

    /// failures so far, lock, now → what a new attempt meets.
    #[test]
    fn pin_lockout_table() {
        use chrono::TimeZone;
        let t = |s: i64| {
            Utc.with_ymd_and_hms(2025, 12, 1, 9, 0, 0).unwrap() + chrono::Duration::seconds(s)
        };
        // (state before, now, Ok(failures, locked until) or Err(retry after s))
        // Ok(failures, locked until) or Err(retry after s)
        type Want = Result<(u32, Option<i64>), u64>;
        let cases: Vec<(PinAttempts, i64, Want)> = vec![
            (PinAttempts::default(), 0, Ok((1, None))),
            (
                PinAttempts {
                    failures: 3,
                    locked_until: None,
                },
                0,
                Ok((4, None)),
            ),
            // The fifth attempt is counted and locks 30 s (lifted if right).
            (
                PinAttempts {
                    failures: 4,
                    locked_until: None,
                },
                0,
                Ok((5, Some(30))),
            ),
            // Locked: refused without a look at the PIN, rounded up.
            (
                PinAttempts {
                    failures: 5,
                    locked_until: Some(t(30)),
                },
                0,
                Err(30),
            ),
            (
                PinAttempts {
                    failures: 5,
                    locked_until: Some(t(30)),
                },
                29,
                Err(1),
            ),
            // Lock over: one more try, and a wrong one doubles the lock.
            (
                PinAttempts {
                    failures: 5,
                    locked_until: Some(t(30)),
                },
                30,
                Ok((6, Some(90))),
            ),
            (
                PinAttempts {
                    failures: 6,
                    locked_until: Some(t(90)),
                },
                100,
                Ok((7, Some(220))),
            ),
            // Capped at 15 minutes, however many.
            (
                PinAttempts {
                    failures: 12,
                    locked_until: None,
                },
                0,
                Ok((13, Some(900))),
            ),
            (
                PinAttempts {
                    failures: u32::MAX,
                    locked_until: None,
                },
                0,
                Ok((u32::MAX, Some(900))),
            ),
        ];
        for (i, (before, now, want)) in cases.into_iter().enumerate() {
            let got = before.begin(t(now));
            match (got, want) {
                (Ok(after), Ok((failures, until))) => {
                    assert_eq!(after.failures, failures, "case {i}");
                    assert_eq!(after.locked_until, until.map(t), "case {i}");
                }
                (
                    Err(DomainError::PinLocked {
                        retry_after_secs,
                        locked_until,
                    }),
                    Err(secs),
                ) => {
                    assert_eq!(retry_after_secs, secs, "case {i}");
                    assert_eq!(Some(locked_until), before.locked_until, "case {i}");
                }
                (got, _) => panic!("case {i}: {got:?}"),
            }
        }
        assert_eq!(PinAttempts::lock_after(4), None);
        assert_eq!(
            PinAttempts::lock_after(5),
            Some(chrono::Duration::seconds(30))
        );
        assert_eq!(
            PinAttempts::lock_after(8),
            Some(chrono::Duration::seconds(240))
        );
    }

    #[test]
    fn pin_hash_bounds() {
        let ours = PinHashParams {
            algorithm: "argon2id",
            version: Some(19),
            m_kib: PIN_HASH_M_KIB,
            t: PIN_HASH_T,
            p: PIN_HASH_P,
        };
        assert_eq!(check_pin_hash(&ours), Ok(()));
        let at_bound = PinHashParams {
            m_kib: PIN_HASH_MAX_M_KIB,
            t: PIN_HASH_MAX_T,
            p: PIN_HASH_MAX_P,
            ..ours.clone()
        };
        assert_eq!(check_pin_hash(&at_bound), Ok(()));
        for bad in [
            PinHashParams {
                algorithm: "argon2i",
                ..ours.clone()
            },
            PinHashParams {
                algorithm: "scrypt",
                ..ours.clone()
            },
            PinHashParams {
                version: Some(16),
                ..ours.clone()
            },
            PinHashParams {
                m_kib: PIN_HASH_MAX_M_KIB + 1,
                ..ours.clone()
            },
            PinHashParams {
                m_kib: u32::MAX,
                ..ours.clone()
            },
            PinHashParams {
                t: PIN_HASH_MAX_T + 1,
                ..ours.clone()
            },
            PinHashParams {
                p: PIN_HASH_MAX_P + 1,
                ..ours.clone()
            },
        ] {
            assert_eq!(
                check_pin_hash(&bad).unwrap_err().code(),
                "PIN_HASH_REFUSED",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names() {
        assert_eq!(validate_name("name", "  Prado ").unwrap(), "Prado");
        assert!(validate_name("name", " ").is_err());
        assert!(validate_name("name", "a\u{7}b").is_err());
        assert!(validate_name("name", &"x".repeat(201)).is_err());
    }
}
