//! Fleet updates of the gate app: the signed bundle format, whether an offered
//! version may be installed, and when (never in the middle of a queue).
//!
//! A bundle is one file: the line `ENTUPD1`, one line of JSON (the header:
//! version, size and SHA-256 of the payload, Ed25519 signature), then the
//! payload (the gate's executable). The signature covers
//! `ENTRADA-UPDATE-1\n{version}\n{sha256 hex}\n{size}`, made with the RELEASE
//! key; a gate verifies it with the public key built into it. The digest is
//! computed by the caller (this crate reads no bytes from disk and has no
//! hash function of its own: ed25519-dalek hashes the message it signs).
//!
//! Parsing is total: any byte string yields a bundle or a refusal.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// What a gate tells its server when it asks for an update: the version it
/// runs and the outcome of its last update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateReport {
    /// `MAJOR.MINOR.PATCH` of the running gate app.
    pub running: String,
    /// The last update this gate tried, if any.
    pub last: Option<UpdateOutcome>,
}

/// One update's outcome on a gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateOutcome {
    pub version: String,
    pub state: UpdateState,
    /// Why (a refusal's code, a failed start's reason); at most 200 characters.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UpdateState {
    /// Downloaded and verified, waiting for a quiet moment.
    Pending,
    /// Running and reported healthy.
    Installed,
    /// Did not start healthy: the previous version runs again.
    RolledBack,
    /// Refused (bad signature, digest, size, not newer).
    Refused,
}

impl UpdateState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Installed => "installed",
            Self::RolledBack => "rolled_back",
            Self::Refused => "refused",
        }
    }
}

/// The server's answer: the newest bundle it holds, if newer than the
/// running version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateOffer {
    pub version: String,
    pub size: u64,
    pub sha256: String,
}

/// `POST /api/sync/update`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateAnswer {
    /// None: no bundle newer than the running version.
    pub offer: Option<UpdateOffer>,
}

/// A gate's version, as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceVersion {
    pub device_id: i64,
    pub venue_id: i64,
    pub name: String,
    pub revoked: bool,
    /// None: the gate never reported (an app older than fleet updates).
    pub app_version: Option<String>,
    pub last_update: Option<UpdateOutcome>,
    pub reported_at: Option<DateTime<Utc>>,
}

/// The gates a caller may list: all of its org's for an org-wide token,
/// only its venue's for a venue-bound one (another venue's gates are as
/// unknown to it as another org's).
pub fn devices_in_scope(devices: Vec<DeviceVersion>, venue: Option<i64>) -> Vec<DeviceVersion> {
    match venue {
        None => devices,
        Some(bound) => devices
            .into_iter()
            .filter(|d| d.venue_id == bound)
            .collect(),
    }
}

/// Checks what a gate reports before the server stores it: versions in
/// `MAJOR.MINOR.PATCH`, a detail of at most 200 characters.
pub fn check_report(report: &UpdateReport) -> Result<(), crate::DomainError> {
    let bad_version = |field| crate::DomainError::invalid(field, "MAJOR.MINOR.PATCH");
    Version::parse(&report.running).map_err(|_| bad_version("running"))?;
    if let Some(last) = &report.last {
        Version::parse(&last.version).map_err(|_| bad_version("last.version"))?;
        if last
            .detail
            .as_ref()
            .is_some_and(|d| d.chars().count() > 200)
        {
            return Err(crate::DomainError::invalid(
                "last.detail",
                "at most 200 characters",
            ));
        }
    }
    Ok(())
}

/// The first line of every bundle.
pub const MAGIC: &[u8] = b"ENTUPD1\n";
/// The header line is shorter than this.
pub const MAX_HEADER_LEN: usize = 1024;
/// No gate executable is larger (a stripped gate is about 20 MB).
pub const MAX_PAYLOAD_LEN: u64 = 256 * 1024 * 1024;
const SIGNED_PREFIX: &str = "ENTRADA-UPDATE-1\n";

/// A release version, `MAJOR.MINOR.PATCH`, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    pub fn parse(text: &str) -> Result<Self, UpdateRefusal> {
        let mut parts = text.split('.');
        let mut next = || -> Result<u32, UpdateRefusal> {
            let part = parts.next().ok_or(UpdateRefusal::BadVersion)?;
            if part.is_empty() || part.len() > 9 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(UpdateRefusal::BadVersion);
            }
            part.parse().map_err(|_| UpdateRefusal::BadVersion)
        };
        let version = Self(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(UpdateRefusal::BadVersion);
        }
        Ok(version)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// What a bundle's header says (the JSON line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleHeader {
    pub version: String,
    /// Lowercase hex SHA-256 of the payload.
    pub sha256: String,
    pub size: u64,
    /// Base64 Ed25519 signature over [`signed_message`].
    pub signature: String,
}

/// Why a bundle (or an offer of one) is refused. Each has a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpdateRefusal {
    #[error("not an update bundle (no ENTUPD1 line)")]
    NotABundle,
    #[error("the bundle's header is unreadable")]
    BadHeader,
    #[error("the bundle's version is not MAJOR.MINOR.PATCH")]
    BadVersion,
    #[error("the bundle's payload is not the size its header says")]
    WrongSize,
    #[error("the bundle's payload is not the one its header describes (digest differs)")]
    DigestMismatch,
    #[error("the bundle's signature is not the release key's")]
    BadSignature,
    #[error("the bundle is not newer than the running version (a downgrade or a replay)")]
    NotNewer,
}

impl UpdateRefusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::NotABundle => "NOT_A_BUNDLE",
            Self::BadHeader => "BAD_BUNDLE_HEADER",
            Self::BadVersion => "BAD_BUNDLE_VERSION",
            Self::WrongSize => "BUNDLE_WRONG_SIZE",
            Self::DigestMismatch => "BUNDLE_DIGEST_MISMATCH",
            Self::BadSignature => "BUNDLE_BAD_SIGNATURE",
            Self::NotNewer => "BUNDLE_NOT_NEWER",
        }
    }
}

/// The bytes the release key signs.
pub fn signed_message(version: Version, sha256: &[u8; 32], size: u64) -> Vec<u8> {
    format!("{SIGNED_PREFIX}{version}\n{}\n{size}", hex(sha256)).into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A bundle split into its header and payload (nothing verified yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle<'a> {
    pub header: BundleHeader,
    pub version: Version,
    pub payload: &'a [u8],
}

/// Reads a bundle's header from its first bytes (at least
/// `MAGIC.len() + MAX_HEADER_LEN`, or the whole file): the header, its
/// version and where the payload starts. Nothing verified.
pub fn parse_header(prefix: &[u8]) -> Result<(BundleHeader, Version, usize), UpdateRefusal> {
    let rest = prefix
        .strip_prefix(MAGIC)
        .ok_or(UpdateRefusal::NotABundle)?;
    let end = rest
        .iter()
        .take(MAX_HEADER_LEN)
        .position(|&b| b == b'\n')
        .ok_or(UpdateRefusal::BadHeader)?;
    let header: BundleHeader =
        serde_json::from_slice(&rest[..end]).map_err(|_| UpdateRefusal::BadHeader)?;
    let version = Version::parse(&header.version)?;
    Ok((header, version, MAGIC.len() + end + 1))
}

/// Splits a bundle file; checks its form and size, not its signature.
pub fn parse_bundle(bytes: &[u8]) -> Result<Bundle<'_>, UpdateRefusal> {
    let (header, version, offset) = parse_header(bytes)?;
    let payload = &bytes[offset..];
    if header.size > MAX_PAYLOAD_LEN || payload.len() as u64 != header.size {
        return Err(UpdateRefusal::WrongSize);
    }
    Ok(Bundle {
        header,
        version,
        payload,
    })
}

/// Verifies a parsed bundle: `payload_sha256` is the digest the caller
/// computed over `bundle.payload`; it must be the header's, and the header
/// must carry the release key's signature over version, digest and size.
pub fn verify_bundle(
    bundle: &Bundle<'_>,
    payload_sha256: &[u8; 32],
    release_key: &VerifyingKey,
) -> Result<(), UpdateRefusal> {
    if hex(payload_sha256) != bundle.header.sha256 {
        return Err(UpdateRefusal::DigestMismatch);
    }
    let signature = STANDARD
        .decode(&bundle.header.signature)
        .ok()
        .and_then(|raw| <[u8; 64]>::try_from(raw.as_slice()).ok())
        .map(|raw| Signature::from_bytes(&raw))
        .ok_or(UpdateRefusal::BadSignature)?;
    release_key
        .verify_strict(
            &signed_message(bundle.version, payload_sha256, bundle.header.size),
            &signature,
        )
        .map_err(|_| UpdateRefusal::BadSignature)
}

/// Makes a bundle (the release step; the private key never reaches a server
/// or a gate).
pub fn make_bundle(
    key: &SigningKey,
    version: Version,
    payload_sha256: &[u8; 32],
    payload: &[u8],
) -> Vec<u8> {
    let size = payload.len() as u64;
    let signature = key.sign(&signed_message(version, payload_sha256, size));
    let header = BundleHeader {
        version: version.to_string(),
        sha256: hex(payload_sha256),
        size,
        signature: STANDARD.encode(signature.to_bytes()),
    };
    let mut out = MAGIC.to_vec();
    out.extend(serde_json::to_vec(&header).expect("a header serialises"));
    out.push(b'\n');
    out.extend_from_slice(payload);
    out
}

/// Whether a gate running `running` takes the offered version: only a newer
/// one (an older or equal one is a downgrade or a replay).
pub fn accept_offer(running: Version, offered: Version) -> Result<(), UpdateRefusal> {
    if offered > running {
        Ok(())
    } else {
        Err(UpdateRefusal::NotNewer)
    }
}

/// What the gate is doing when a verified update is ready to install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateActivity {
    pub now: DateTime<Utc>,
    /// The last scan on this gate (any verdict).
    pub last_scan_at: Option<DateTime<Utc>>,
    /// The operator screen is locked (nobody is scanning).
    pub locked: bool,
    /// A supervisor deferred updates until then.
    pub deferred_until: Option<DateTime<Utc>>,
}

/// When to install: now, or not yet and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallMoment {
    Now,
    Deferred,
    QueueActive,
}

/// Installs only between queues: never while a supervisor's deferral runs;
/// at once when the screen is locked; otherwise only after `quiet` without
/// a scan.
pub fn install_moment(activity: &GateActivity, quiet: Duration) -> InstallMoment {
    if activity
        .deferred_until
        .is_some_and(|until| activity.now < until)
    {
        return InstallMoment::Deferred;
    }
    if activity.locked {
        return InstallMoment::Now;
    }
    match activity.last_scan_at {
        Some(at) if activity.now - at < quiet => InstallMoment::QueueActive,
        _ => InstallMoment::Now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    // Stands in for SHA-256 (this crate has none): any 32 bytes.
    fn digest(payload: &[u8]) -> [u8; 32] {
        let mut d = [0u8; 32];
        for (i, b) in payload.iter().enumerate() {
            d[i % 32] ^= b.wrapping_add(i as u8);
        }
        d
    }

    #[test]
    fn a_venue_bound_caller_lists_only_its_venues_gates() {
        let gate = |device_id, venue_id| DeviceVersion {
            device_id,
            venue_id,
            name: format!("gate {device_id}"),
            revoked: false,
            app_version: None,
            last_update: None,
            reported_at: None,
        };
        let all = vec![gate(1, 10), gate(2, 20), gate(3, 10)];
        let cases = [
            (None, vec![1, 2, 3]),
            (Some(10), vec![1, 3]),
            (Some(20), vec![2]),
            (Some(30), vec![]),
        ];
        for (venue, want) in cases {
            let got: Vec<i64> = devices_in_scope(all.clone(), venue)
                .iter()
                .map(|d| d.device_id)
                .collect();
            assert_eq!(got, want, "{venue:?}");
        }
    }

    #[test]
    fn versions_parse_and_order_numerically() {
        let cases = [
            ("1.2.3", Some(Version(1, 2, 3))),
            ("0.10.0", Some(Version(0, 10, 0))),
            ("1.2", None),
            ("1.2.3.4", None),
            ("1.x.3", None),
            ("", None),
            ("1..3", None),
            ("+1.2.3", None),
            ("9999999999.0.0", None),
        ];
        for (text, want) in cases {
            assert_eq!(Version::parse(text).ok(), want, "{text}");
        }
        assert!(Version(0, 10, 0) > Version(0, 9, 9));
        assert!(Version(1, 0, 0) > Version(0, 99, 99));
    }

    #[test]
    fn only_a_newer_version_is_accepted() {
        let v = |s| Version::parse(s).unwrap();
        let cases = [
            ("1.0.0", "1.0.1", Ok(())),
            ("1.0.0", "2.0.0", Ok(())),
            ("1.0.0", "1.0.0", Err(UpdateRefusal::NotNewer)),
            ("1.2.0", "1.1.9", Err(UpdateRefusal::NotNewer)),
        ];
        for (running, offered, want) in cases {
            assert_eq!(
                accept_offer(v(running), v(offered)),
                want,
                "{running} → {offered}"
            );
        }
    }

    #[test]
    fn a_made_bundle_parses_and_verifies() {
        let payload = b"#!/bin/sh\necho new\n";
        let bytes = make_bundle(&key(1), Version(1, 2, 3), &digest(payload), payload);
        let bundle = parse_bundle(&bytes).unwrap();
        assert_eq!(bundle.version, Version(1, 2, 3));
        assert_eq!(bundle.payload, payload);
        assert_eq!(
            verify_bundle(&bundle, &digest(payload), &key(1).verifying_key()),
            Ok(())
        );
    }

    #[test]
    fn forged_or_altered_bundles_are_refused() {
        let payload = b"the real payload";
        let good = make_bundle(&key(1), Version(1, 2, 3), &digest(payload), payload);
        let release = key(1).verifying_key();
        let verify = |bytes: &[u8]| -> Result<(), UpdateRefusal> {
            let bundle = parse_bundle(bytes)?;
            verify_bundle(&bundle, &digest(bundle.payload), &release)
        };
        // signed by another key
        let forged = make_bundle(&key(2), Version(1, 2, 3), &digest(payload), payload);
        // payload changed after signing (same length)
        let mut altered = good.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        // version in the header raised after signing (a replayed old
        // signature passed off as a newer version)
        let text = String::from_utf8_lossy(&good).replace("\"1.2.3\"", "\"1.2.4\"");
        let cases: Vec<(&str, Vec<u8>, UpdateRefusal)> = vec![
            ("another key", forged, UpdateRefusal::BadSignature),
            ("payload altered", altered, UpdateRefusal::DigestMismatch),
            (
                "version raised",
                text.into_bytes(),
                UpdateRefusal::BadSignature,
            ),
            (
                "truncated",
                good[..good.len() - 3].to_vec(),
                UpdateRefusal::WrongSize,
            ),
            (
                "no magic",
                b"MZ\x90\x00".to_vec(),
                UpdateRefusal::NotABundle,
            ),
            (
                "no header end",
                b"ENTUPD1\n{".to_vec(),
                UpdateRefusal::BadHeader,
            ),
            (
                "header not json",
                b"ENTUPD1\nnope\n".to_vec(),
                UpdateRefusal::BadHeader,
            ),
            (
                "bad version",
                b"ENTUPD1\n{\"version\":\"1\",\"sha256\":\"\",\"size\":0,\"signature\":\"\"}\n"
                    .to_vec(),
                UpdateRefusal::BadVersion,
            ),
            (
                "signature not base64",
                String::from_utf8_lossy(&good)
                    .replacen("\"signature\":\"", "\"signature\":\"!!", 1)
                    .into_bytes(),
                UpdateRefusal::BadSignature,
            ),
        ];
        for (label, bytes, want) in cases {
            assert_eq!(verify(&bytes), Err(want), "{label}");
        }
        assert_eq!(verify(&good), Ok(()));
    }

    #[test]
    fn reports_are_checked() {
        let outcome = |version: &str, detail: Option<String>| UpdateOutcome {
            version: version.into(),
            state: UpdateState::RolledBack,
            detail,
        };
        let cases = [
            ("1.0.0", None, true),
            ("1.0", None, false),
            ("1.0.0", Some(outcome("1.0.1", None)), true),
            ("1.0.0", Some(outcome("v1", None)), false),
            ("1.0.0", Some(outcome("1.0.1", Some("x".repeat(200)))), true),
            (
                "1.0.0",
                Some(outcome("1.0.1", Some("x".repeat(201)))),
                false,
            ),
        ];
        for (running, last, ok) in cases {
            let report = UpdateReport {
                running: running.into(),
                last,
            };
            assert_eq!(check_report(&report).is_ok(), ok, "{report:?}");
        }
    }

    #[test]
    fn installs_only_between_queues() {
        let now = DateTime::parse_from_rfc3339("2026-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let s = Duration::seconds;
        let quiet = s(60);
        let cases = [
            // (last scan ago, locked, deferred for, expected)
            (None, false, None, InstallMoment::Now),
            (Some(s(10)), false, None, InstallMoment::QueueActive),
            (Some(s(59)), false, None, InstallMoment::QueueActive),
            (Some(s(60)), false, None, InstallMoment::Now),
            (Some(s(10)), true, None, InstallMoment::Now),
            (None, true, Some(s(30)), InstallMoment::Deferred),
            (None, false, Some(s(-1)), InstallMoment::Now),
            (Some(s(300)), false, Some(s(1)), InstallMoment::Deferred),
        ];
        for (ago, locked, deferred, want) in cases {
            let activity = GateActivity {
                now,
                last_scan_at: ago.map(|a| now - a),
                locked,
                deferred_until: deferred.map(|d| now + d),
            };
            assert_eq!(
                install_moment(&activity, quiet),
                want,
                "{ago:?} {locked} {deferred:?}"
            );
        }
    }
}
