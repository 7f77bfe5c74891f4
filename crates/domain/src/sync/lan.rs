//! Gate to gate (issue 14): the signed events the gates of one venue
//! exchange over the LAN, and who may send them.
//!
//! Each paired gate has its own Ed25519 key pair (made on the gate at
//! pairing, the public half registered with the server, the other gates'
//! public halves received through sync). Every outbox event is signed by the
//! gate that made it over [`canonical`]; a receiver accepts it only from a
//! listed peer of its own org and venue ([`check`]). Pure: keys and lists
//! come in as values.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::protocol::Event;

/// What a peer's message may weigh at most, encoded (an admission event is
/// under 1 KiB): a longer one is refused before it is parsed.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// Domain separation for the signature: no other Entrada signature (ticket
/// codes sign `ENT1.` + payload) can be taken for an event's.
const CONTEXT: &[u8] = b"entrada-lan-event-v1\n";

/// Another gate of the same venue and org, as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PeerKey {
    pub device_id: i64,
    pub name: String,
    /// Ed25519 public key, 64 lowercase hex characters.
    pub public_key: String,
}

/// A device's registration of its public key; the answer lists its peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PeerRequest {
    /// This device's Ed25519 public key, 64 hex characters.
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PeerList {
    /// The other non-revoked gates of the caller's venue and org that
    /// registered a key.
    pub peers: Vec<PeerKey>,
}

/// One outbox event as it travels between gates: the event, its origin and
/// the origin's signature over [`canonical`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedEvent {
    pub origin_device_id: i64,
    pub orq: i64,
    pub venue_id: i64,
    pub event: Event,
    /// Ed25519 signature, 128 hex characters.
    pub signature: String,
}

/// The receiver's answer to one event: the sender moves its cursor for
/// this peer past `event_id` (a refused event is not sent again either).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanAck {
    pub event_id: uuid::Uuid,
    /// `applied`, `duplicate` or `refused`.
    pub outcome: String,
    /// The refusal's code ([`LanRefusal::code`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Why a peer's event changes nothing (each is logged by the receiver).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LanRefusal {
    /// Another org's event.
    OtherOrg,
    /// Another venue's gate.
    OtherVenue,
    /// Its origin is not a listed peer (unknown, revoked, or this gate itself).
    UnknownSender,
    /// The signature does not match the origin's key (forged or tampered).
    BadSignature,
    /// Longer than [`MAX_MESSAGE_BYTES`] or not a signed event.
    Malformed,
}

impl LanRefusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::OtherOrg => "OTHER_ORG",
            Self::OtherVenue => "OTHER_VENUE",
            Self::UnknownSender => "UNKNOWN_SENDER",
            Self::BadSignature => "BAD_SIGNATURE",
            Self::Malformed => "MALFORMED",
        }
    }
}

/// The bytes an event's signature covers: a context string, then the JSON
/// of origin, org, venue and the event, in this fixed field order (the
/// payload's keys sorted, as serde_json's map keeps them).
pub fn canonical(origin_device_id: i64, orq: i64, venue_id: i64, event: &Event) -> Vec<u8> {
    #[derive(Serialize)]
    struct Canonical<'a> {
        origin_device_id: i64,
        orq: i64,
        venue_id: i64,
        event_id: String,
        kind: &'a str,
        payload: String,
        operator_id: Option<i64>,
        device_time: String,
    }
    let body = Canonical {
        origin_device_id,
        orq,
        venue_id,
        event_id: event.event_id.to_string(),
        kind: &event.kind,
        payload: sorted_json(&event.payload),
        operator_id: event.operator_id,
        device_time: event
            .device_time
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    };
    let mut out = CONTEXT.to_vec();
    out.extend(serde_json::to_vec(&body).unwrap_or_default());
    out
}

/// JSON with every object's keys sorted, whatever map the build uses.
fn sorted_json(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        Value::String(k.clone()),
                        sorted_json(&map[k.as_str()])
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(sorted_json).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// Signs an event made by this gate.
pub fn sign(
    key: &SigningKey,
    origin_device_id: i64,
    orq: i64,
    venue_id: i64,
    event: &Event,
) -> SignedEvent {
    let signature = key.sign(&canonical(origin_device_id, orq, venue_id, event));
    SignedEvent {
        origin_device_id,
        orq,
        venue_id,
        event: event.clone(),
        signature: hex(&signature.to_bytes()),
    }
}

/// A public key's hex form, as registered and listed.
pub fn public_key_hex(key: &SigningKey) -> String {
    hex(&key.verifying_key().to_bytes())
}

/// A listed public key, or None when it is not 64 hex characters of a
/// valid Ed25519 point.
pub fn parse_public_key(text: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = unhex(text)?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// Whether this gate (of `orq`, `venue_id`) accepts `signed` from its
/// listed `peers`. Replays are the store's to see (by event id).
pub fn check(
    signed: &SignedEvent,
    orq: i64,
    venue_id: i64,
    peers: &[PeerKey],
) -> Result<(), LanRefusal> {
    if signed.orq != orq {
        return Err(LanRefusal::OtherOrg);
    }
    if signed.venue_id != venue_id {
        return Err(LanRefusal::OtherVenue);
    }
    let peer = peers
        .iter()
        .find(|p| p.device_id == signed.origin_device_id)
        .ok_or(LanRefusal::UnknownSender)?;
    let key = parse_public_key(&peer.public_key).ok_or(LanRefusal::UnknownSender)?;
    let signature: [u8; 64] = unhex(&signed.signature)
        .and_then(|b| b.try_into().ok())
        .ok_or(LanRefusal::BadSignature)?;
    key.verify_strict(
        &canonical(
            signed.origin_device_id,
            signed.orq,
            signed.venue_id,
            &signed.event,
        ),
        &Signature::from_bytes(&signature),
    )
    .map_err(|_| LanRefusal::BadSignature)
}

/// Reads a peer's message: bounded first, then parsed.
pub fn parse_message(bytes: &[u8]) -> Result<SignedEvent, LanRefusal> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(LanRefusal::Malformed);
    }
    serde_json::from_slice(bytes).map_err(|_| LanRefusal::Malformed)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 256 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// An admission of one ticket this replica knows with the gate that made
/// it: its own outbox's, or one a peer sent over the LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownAdmission {
    /// The admitting gate's name.
    pub gate: String,
    /// The admission's time on that gate's clock.
    pub at: chrono::DateTime<chrono::Utc>,
    pub operator: Option<i64>,
}

/// How far the ticket's recorded time may be from the admitting gate's own
/// clock and still be that admission: the server records an upload at the
/// gate's time corrected by its clock offset.
pub const SAME_ADMISSION_WITHIN: chrono::Duration = chrono::Duration::minutes(5);

/// Which gate admitted a used ticket (`verified_at` by `verified_by`): the
/// gate the ticket's row names (`recorded`: the server wrote the uploading
/// device's name with the verification, and the row came through sync),
/// else among the admissions the replica knows, the one by the same
/// operator closest in time, within [`SAME_ADMISSION_WITHIN`]; None when
/// neither says (an admission at the server's desk, one recorded before the
/// server kept the device, or a gate this replica never heard from).
pub fn admitting_gate<'a>(
    verified_at: Option<chrono::DateTime<chrono::Utc>>,
    verified_by: Option<i64>,
    recorded: Option<&'a str>,
    known: &'a [KnownAdmission],
) -> Option<&'a str> {
    let at = verified_at?;
    // The server's record is the canonical admission itself (the earliest of
    // a double entry); a known one only matches it by operator and time.
    if let Some(gate) = recorded.filter(|g| !g.is_empty()) {
        return Some(gate);
    }
    known
        .iter()
        .filter(|k| verified_by.is_none() || k.operator == verified_by)
        .map(|k| ((k.at - at).abs(), k))
        .filter(|(gap, _)| *gap <= SAME_ADMISSION_WITHIN)
        .min_by_key(|(gap, _)| *gap)
        .map(|(_, k)| k.gate.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn event() -> Event {
        Event {
            event_id: uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
            kind: "verify".into(),
            payload: serde_json::json!({"ticket_code": "TKT-1", "b": 1, "a": [2, {"z": 1, "y": 2}]}),
            operator_id: Some(5),
            device_time: chrono::Utc
                .with_ymd_and_hms(2026, 11, 30, 18, 0, 0)
                .unwrap(),
        }
    }

    fn peers() -> Vec<PeerKey> {
        vec![
            PeerKey {
                device_id: 1,
                name: "A".into(),
                public_key: public_key_hex(&key(1)),
            },
            PeerKey {
                device_id: 2,
                name: "B".into(),
                public_key: public_key_hex(&key(2)),
            },
        ]
    }

    #[test]
    fn who_may_send_what_case_table() {
        let good = sign(&key(1), 1, 7, 3, &event());
        let mut tampered = good.clone();
        tampered.event.payload["ticket_code"] = "TKT-2".into();
        let mut resigned_other_venue = sign(&key(1), 1, 7, 4, &event());
        resigned_other_venue.venue_id = 4;
        let mut bad_hex = good.clone();
        bad_hex.signature = "zz".into();
        let mut later = good.clone();
        later.event.device_time += chrono::Duration::seconds(1);
        let cases: Vec<(&str, SignedEvent, Result<(), LanRefusal>)> = vec![
            ("a listed peer's event", good.clone(), Ok(())),
            (
                "another org",
                sign(&key(1), 1, 8, 3, &event()),
                Err(LanRefusal::OtherOrg),
            ),
            (
                "another venue",
                resigned_other_venue,
                Err(LanRefusal::OtherVenue),
            ),
            (
                "an unlisted gate",
                sign(&key(9), 9, 7, 3, &event()),
                Err(LanRefusal::UnknownSender),
            ),
            (
                "signed by B's key, claims A",
                sign(&key(2), 1, 7, 3, &event()),
                Err(LanRefusal::BadSignature),
            ),
            (
                "payload changed after signing",
                tampered,
                Err(LanRefusal::BadSignature),
            ),
            (
                "time changed after signing",
                later,
                Err(LanRefusal::BadSignature),
            ),
            ("signature not hex", bad_hex, Err(LanRefusal::BadSignature)),
        ];
        for (name, signed, expected) in cases {
            assert_eq!(check(&signed, 7, 3, &peers()), expected, "{name}");
        }
    }

    #[test]
    fn canonical_ignores_the_payload_key_order() {
        let mut reordered = event();
        reordered.payload =
            serde_json::from_str(r#"{"a":[2,{"y":2,"z":1}],"ticket_code":"TKT-1","b":1}"#).unwrap();
        assert_eq!(canonical(1, 7, 3, &event()), canonical(1, 7, 3, &reordered));
        let wire = serde_json::to_vec(&sign(&key(1), 1, 7, 3, &event())).unwrap();
        assert_eq!(
            check(&parse_message(&wire).unwrap(), 7, 3, &peers()),
            Ok(())
        );
    }

    #[test]
    fn messages_are_bounded_before_parsing() {
        assert_eq!(
            parse_message(&vec![b' '; MAX_MESSAGE_BYTES + 1]),
            Err(LanRefusal::Malformed)
        );
        assert_eq!(parse_message(b"{not json"), Err(LanRefusal::Malformed));
        assert!(parse_public_key("00").is_none());
        assert!(parse_public_key(&public_key_hex(&key(3))).is_some());
    }

    #[test]
    fn the_gate_named_is_the_admission_that_used_the_ticket() {
        use chrono::TimeZone;
        let t = |m: i64| {
            chrono::Utc.with_ymd_and_hms(2026, 5, 1, 10, 0, 0).unwrap()
                + chrono::Duration::seconds(m)
        };
        let known = |gate: &str, at: i64, op: i64| KnownAdmission {
            gate: gate.into(),
            at: t(at),
            operator: Some(op),
        };
        let a = known("Gate A", 0, 7);
        let b = known("Gate B", 120, 7);
        let c = known("Gate C", 0, 8);
        // (verified_at, verified_by, known) → gate
        #[allow(clippy::type_complexity)]
        let cases: Vec<(Option<i64>, Option<i64>, Vec<KnownAdmission>, Option<&str>)> = vec![
            (Some(0), Some(7), vec![a.clone()], Some("Gate A")),
            // The server's time corrected by the gate's clock offset.
            (Some(40), Some(7), vec![a.clone()], Some("Gate A")),
            (Some(300), Some(7), vec![a.clone()], Some("Gate A")),
            (Some(301), Some(7), vec![a.clone()], None),
            (Some(-300), Some(7), vec![a.clone()], Some("Gate A")),
            // The closest of two by the same operator.
            (
                Some(100),
                Some(7),
                vec![a.clone(), b.clone()],
                Some("Gate B"),
            ),
            (
                Some(10),
                Some(7),
                vec![b.clone(), a.clone()],
                Some("Gate A"),
            ),
            // Another operator's admission is not this one.
            (Some(0), Some(8), vec![a.clone(), c.clone()], Some("Gate C")),
            (Some(0), Some(9), vec![a.clone(), c.clone()], None),
            // No operator recorded: the time decides.
            (Some(110), None, vec![a.clone(), b.clone()], Some("Gate B")),
            // Not used, or nothing known.
            (None, Some(7), vec![a.clone()], None),
            (Some(0), Some(7), vec![], None),
        ];
        for (i, (at, by, known, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                admitting_gate(at.map(t), by, None, &known),
                want,
                "case {i}"
            );
        }
        // The row's gate (the server's record of the uploading device) wins
        // over a known admission, also one closer in time: it is the
        // canonical admission; an empty name is no name.
        let both = [a.clone(), b.clone()];
        assert_eq!(
            admitting_gate(Some(t(0)), Some(7), Some("Gate D"), &both),
            Some("Gate D")
        );
        assert_eq!(
            admitting_gate(Some(t(0)), Some(7), Some("Gate D"), &[]),
            Some("Gate D"),
            "learnt through sync only"
        );
        assert_eq!(
            admitting_gate(Some(t(0)), Some(7), Some(""), &both),
            Some("Gate A")
        );
        assert_eq!(
            admitting_gate(None, Some(7), Some("Gate D"), &both),
            None,
            "not used: no gate"
        );
    }
}
