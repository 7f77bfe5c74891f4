//! Signed ticket codes: `ENT1.` + base64url(payload) + `.` + base64url(Ed25519
//! signature over `ENT1.` + payload). A gate holding the org's public keys can
//! tell an authentic code from a forged one without having synced the ticket.
//!
//! Parsing is total: any byte string yields a plain code, a signed code, or
//! a refusal with its reason — never a panic.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use uuid::Uuid;

use super::verdict::{not_synced_verdict, Verdict, VerdictCode};
use super::{OperatorId, Orq, SlotId, TicketCode, VenueId};

/// Version 1 prefix; the digit after `ENT` is the version.
pub const PREFIX_V1: &str = "ENT1.";
/// Nothing a gate accepts is longer (a v1 code is under 250 bytes).
pub const MAX_SCANNED_LEN: usize = 1024;

/// What a signed code asserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketClaims {
    /// The signing key's id.
    pub kid: u32,
    pub orq: Orq,
    pub ticket_code: TicketCode,
    /// Bumped when a ticket is re-issued: older codes are revoked.
    pub serial: u32,
    pub product_id: Option<i64>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub venue_id: Option<VenueId>,
    pub slot_id: Option<SlotId>,
}

/// A scanned code, before any key is consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scanned {
    Plain(TicketCode),
    Signed {
        claims: TicketClaims,
        message: Vec<u8>,
        signature: [u8; 64],
    },
}

impl Scanned {
    pub fn ticket_code(&self) -> &TicketCode {
        match self {
            Self::Plain(code) => code,
            Self::Signed { claims, .. } => &claims.ticket_code,
        }
    }
}

/// Why a scanned code is not accepted as a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeRefusal {
    #[error("unreadable code: {0}")]
    Unreadable(&'static str),
    #[error("forged code: {0}")]
    Forged(&'static str),
}

impl CodeRefusal {
    /// The red verdict shown for a refused code (`code`: the ticket it
    /// claims, if it could be read that far).
    pub fn verdict(self, code: Option<&TicketCode>) -> Verdict {
        let (verdict, message) = match self {
            Self::Unreadable(why) => (VerdictCode::Unreadable, format!("Unreadable code: {why}")),
            Self::Forged(why) => (VerdictCode::Forged, format!("Forged code: {why}")),
        };
        let mut v = Verdict::refusal(verdict, message);
        v.ticket_code = code.map(ToString::to_string);
        v
    }
}

const FLAG_VENUE: u8 = 1;
const FLAG_SLOT: u8 = 2;
const FLAG_PRODUCT: u8 = 4;
const FLAG_FROM: u8 = 8;
const FLAG_UNTIL: u8 = 16;

fn encode_payload(c: &TicketClaims) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(&c.kid.to_be_bytes());
    out.extend_from_slice(&c.orq.0.to_be_bytes());
    out.extend_from_slice(&c.serial.to_be_bytes());
    let flags = [
        (c.venue_id.is_some(), FLAG_VENUE),
        (c.slot_id.is_some(), FLAG_SLOT),
        (c.product_id.is_some(), FLAG_PRODUCT),
        (c.valid_from.is_some(), FLAG_FROM),
        (c.valid_until.is_some(), FLAG_UNTIL),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .fold(0u8, |acc, (_, f)| acc | f);
    out.push(flags);
    if let Some(v) = c.venue_id {
        out.extend_from_slice(&v.0.to_be_bytes());
    }
    if let Some(s) = c.slot_id {
        out.extend_from_slice(s.0.as_bytes());
    }
    if let Some(p) = c.product_id {
        out.extend_from_slice(&p.to_be_bytes());
    }
    for t in [c.valid_from, c.valid_until].into_iter().flatten() {
        out.extend_from_slice(&t.timestamp().to_be_bytes());
    }
    let code = c.ticket_code.as_str().as_bytes();
    out.push(code.len() as u8); // TicketCode is at most 64 bytes
    out.extend_from_slice(code);
    out
}

/// A cursor that never reads past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodeRefusal> {
        if self.0.len() < n {
            return Err(CodeRefusal::Unreadable("truncated payload"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodeRefusal> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn i64(&mut self) -> Result<i64, CodeRefusal> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, CodeRefusal> {
        Ok(u32::from_be_bytes(self.array()?))
    }
}

fn decode_payload(bytes: &[u8]) -> Result<TicketClaims, CodeRefusal> {
    let mut r = Reader(bytes);
    let kid = r.u32()?;
    let orq = Orq(r.i64()?);
    let serial = r.u32()?;
    let [flags] = r.array::<1>()?;
    if flags & !(FLAG_VENUE | FLAG_SLOT | FLAG_PRODUCT | FLAG_FROM | FLAG_UNTIL) != 0 {
        return Err(CodeRefusal::Unreadable("unknown payload flags"));
    }
    let venue_id = if flags & FLAG_VENUE != 0 {
        Some(VenueId(r.i64()?))
    } else {
        None
    };
    let slot_id = if flags & FLAG_SLOT != 0 {
        Some(SlotId(Uuid::from_bytes(r.array()?)))
    } else {
        None
    };
    let product_id = if flags & FLAG_PRODUCT != 0 {
        Some(r.i64()?)
    } else {
        None
    };
    let mut time = |flag| -> Result<Option<DateTime<Utc>>, CodeRefusal> {
        if flags & flag == 0 {
            return Ok(None);
        }
        DateTime::from_timestamp(r.i64()?, 0)
            .map(Some)
            .ok_or(CodeRefusal::Unreadable("timestamp out of range"))
    };
    let valid_from = time(FLAG_FROM)?;
    let valid_until = time(FLAG_UNTIL)?;
    let [len] = r.array::<1>()?;
    let code = std::str::from_utf8(r.take(len.into())?)
        .map_err(|_| CodeRefusal::Unreadable("ticket code is not UTF-8"))?;
    let ticket_code = TicketCode::parse(code)
        .map_err(|_| CodeRefusal::Unreadable("bad ticket code in payload"))?;
    if !r.0.is_empty() {
        return Err(CodeRefusal::Unreadable("trailing bytes in payload"));
    }
    Ok(TicketClaims {
        kid,
        orq,
        ticket_code,
        serial,
        product_id,
        valid_from,
        valid_until,
        venue_id,
        slot_id,
    })
}

/// Signs `claims` with `key`; the result is what goes into the QR code.
pub fn sign(claims: &TicketClaims, key: &SigningKey) -> String {
    let payload = URL_SAFE_NO_PAD.encode(encode_payload(claims));
    let message = format!("{PREFIX_V1}{payload}");
    let signature = key.sign(message.as_bytes());
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// Reads whatever a scanner produced.
pub fn parse_scanned(raw: &[u8]) -> Result<Scanned, CodeRefusal> {
    if raw.len() > MAX_SCANNED_LEN {
        return Err(CodeRefusal::Unreadable("oversized code"));
    }
    let text = std::str::from_utf8(raw)
        .map_err(|_| CodeRefusal::Unreadable("not text"))?
        .trim();
    // `ENT` + digits + `.` is our versioned format; anything else is a plain code.
    if let Some(rest) = text.strip_prefix("ENT") {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest.as_bytes().get(digits) == Some(&b'.') {
            if &rest[..digits] != "1" {
                return Err(CodeRefusal::Unreadable("unsupported code version"));
            }
            return parse_v1(text);
        }
    }
    TicketCode::parse(text)
        .map(Scanned::Plain)
        .map_err(|_| CodeRefusal::Unreadable("not a ticket code"))
}

fn parse_v1(text: &str) -> Result<Scanned, CodeRefusal> {
    let (message, sig) = text
        .rsplit_once('.')
        .ok_or(CodeRefusal::Unreadable("missing signature"))?;
    let payload = message
        .strip_prefix(PREFIX_V1)
        .ok_or(CodeRefusal::Unreadable("missing signature"))?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| CodeRefusal::Unreadable("payload is not base64url"))?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| CodeRefusal::Forged("signature is not base64url"))?;
    let signature: [u8; 64] = sig
        .try_into()
        .map_err(|_| CodeRefusal::Forged("signature has the wrong length"))?;
    let claims = decode_payload(&payload)?;
    Ok(Scanned::Signed {
        claims,
        message: message.as_bytes().to_vec(),
        signature,
    })
}

/// Checks the signature of a signed code with the key its `kid` names.
pub fn verify_signature(
    message: &[u8],
    signature: &[u8; 64],
    key: &VerifyingKey,
) -> Result<(), CodeRefusal> {
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| CodeRefusal::Forged("signature does not match"))
}

/// A signing key as this database knows it.
#[derive(Debug, Clone, Copy)]
pub struct KnownKey<'a> {
    /// Ed25519 public key bytes (32 when usable).
    pub public_key: &'a [u8],
    pub retired: bool,
}

/// The key's word on a signed code, before any ticket rule: the code is of
/// this org (`orq`), its key (`key`: the one its `kid` names here, if any) is
/// known, not retired and usable, and the signature is the key's.
pub fn check_key(
    claims: &TicketClaims,
    orq: Orq,
    key: Option<KnownKey<'_>>,
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), CodeRefusal> {
    if claims.orq != orq {
        return Err(CodeRefusal::Forged("code of another organisation"));
    }
    let Some(key) = key else {
        return Err(CodeRefusal::Forged("unknown signing key"));
    };
    if key.retired {
        return Err(CodeRefusal::Forged("signing key retired"));
    }
    let Some(public) = <[u8; 32]>::try_from(key.public_key)
        .ok()
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
    else {
        return Err(CodeRefusal::Forged("unusable signing key"));
    };
    verify_signature(message, signature, &public)
}

/// An operator on this device already let in the holder of an authentic
/// code whose ticket the device did not have (its first such admission).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmittedHere {
    pub at: DateTime<Utc>,
    pub by: Option<OperatorId>,
}

impl AdmittedHere {
    /// ALREADY_VERIFIED, saying when and by whom.
    pub fn verdict(self, code: &TicketCode) -> Verdict {
        let mut v = Verdict::refusal(VerdictCode::AlreadyVerified, "Already verified");
        v.ticket_code = Some(code.to_string());
        (v.verified_at, v.verified_by) = (Some(self.at), self.by);
        v
    }
}

/// An authentic signed code whose ticket this replica does not have: it is
/// let in once before its ticket arrives, so a code let in here already is
/// ALREADY_VERIFIED; else the code's own validity decides
/// (`not_synced_verdict`: amber AUTHENTIC_NOT_SYNCED, or red EXPIRED /
/// WRONG_DATE).
pub fn screen_not_synced(
    claims: &TicketClaims,
    admitted_here: Option<AdmittedHere>,
    now: DateTime<Utc>,
) -> Verdict {
    match admitted_here {
        Some(earlier) => earlier.verdict(&claims.ticket_code),
        None => not_synced_verdict(claims, now),
    }
}

/// The operator lets in, at `now`, the holder of the amber verdict `shown`
/// about an authentic code (`code`) whose ticket this replica does not have.
/// Refused (`Err`, the verdict to show) if the code was let in here already
/// meanwhile, or if `shown` is not the operator's to overrule.
pub fn admit_not_synced(
    shown: Verdict,
    code: &TicketCode,
    admitted_here: Option<AdmittedHere>,
    operator: OperatorId,
    now: DateTime<Utc>,
) -> Result<Verdict, Box<Verdict>> {
    if let Some(earlier) = admitted_here {
        return Err(Box::new(earlier.verdict(code)));
    }
    let mut admitted = shown.overrule()?;
    (admitted.verified_at, admitted.verified_by) = (Some(now), Some(operator));
    Ok(admitted)
}

/// The serial a ticket's first code carries; each re-issue bumps it.
pub const FIRST_SERIAL: u32 = 1;

/// How an org lets tickets be presented at its gates. Set by an admin on the
/// server, synced to every gate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CodePolicy {
    /// Only signed `ENT1.` codes admit; a plain code answers SIGNED_CODE_REQUIRED.
    pub signed_codes_only: bool,
}

/// How a ticket code reached the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// Typed, or read from a QR code that holds the bare code.
    Plain(&'a TicketCode),
    /// A signed code whose key, org and signature were checked already.
    Signed(&'a TicketClaims),
}

/// What to do with a code before the ticket rules judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screening {
    /// Judge the ticket (`gate_verdict`).
    Judge,
    /// An authentic signed code of a ticket this replica does not have yet.
    NotSynced,
    /// Refused for how it was presented, whatever the ticket's state.
    Refuse(Box<Verdict>),
}

/// The code's own word, before the ticket rules: `current_serial` is the
/// ticket's serial as this database knows it (`None`: no such ticket here).
///
/// - A plain code is refused when the org takes signed codes only (every
///   plain code, known ticket or not), and once its ticket's code was
///   re-issued: a re-issue revokes what was printed before, the bare code
///   included — else anyone who ever saw the code could still walk in.
/// - A signed code older than the ticket's serial is revoked. A newer one is
///   authentic and only means this replica has not synced the re-issue yet.
pub fn screen_code(
    presented: Presented<'_>,
    current_serial: Option<u32>,
    policy: CodePolicy,
) -> Screening {
    let refuse = |code: VerdictCode, message: &str, ticket: &TicketCode| {
        let mut v = Verdict::refusal(code, message);
        v.ticket_code = Some(ticket.to_string());
        Screening::Refuse(Box::new(v))
    };
    match presented {
        Presented::Plain(code) if policy.signed_codes_only => refuse(
            VerdictCode::SignedCodeRequired,
            "Plain codes are not accepted here: show the ticket's QR code",
            code,
        ),
        Presented::Plain(code) => match current_serial {
            Some(serial) if serial > FIRST_SERIAL => refuse(
                VerdictCode::Revoked,
                "Code re-issued: only the new QR code admits",
                code,
            ),
            _ => Screening::Judge,
        },
        Presented::Signed(claims) => match current_serial {
            Some(current) if claims.serial < current => refuse(
                VerdictCode::Revoked,
                "Code replaced by a newer one",
                &claims.ticket_code,
            ),
            Some(_) => Screening::Judge,
            None => Screening::NotSynced,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn claims() -> TicketClaims {
        TicketClaims {
            kid: 7,
            orq: Orq(1),
            ticket_code: TicketCode::parse("TKT-2025-ABC123").unwrap(),
            serial: 1,
            product_id: Some(42),
            valid_from: Some(Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).unwrap()),
            valid_until: Some(Utc.with_ymd_and_hms(2025, 12, 31, 23, 0, 0).unwrap()),
            venue_id: Some(VenueId(3)),
            slot_id: Some(SlotId(Uuid::from_u128(0x1234))),
        }
    }

    fn check(code: &str, key: &SigningKey) -> Result<TicketClaims, CodeRefusal> {
        match parse_scanned(code.as_bytes())? {
            Scanned::Signed {
                claims,
                message,
                signature,
            } => {
                verify_signature(&message, &signature, &key.verifying_key())?;
                Ok(claims)
            }
            Scanned::Plain(_) => panic!("expected a signed code"),
        }
    }

    #[test]
    fn valid_code_round_trips_and_is_compact() {
        let code = sign(&claims(), &key(1));
        assert!(code.starts_with(PREFIX_V1));
        assert!(code.len() < 250, "{} bytes", code.len());
        assert_eq!(check(&code, &key(1)), Ok(claims()));
        let minimal = TicketClaims {
            product_id: None,
            valid_from: None,
            valid_until: None,
            venue_id: None,
            slot_id: None,
            ..claims()
        };
        assert_eq!(check(&sign(&minimal, &key(1)), &key(1)), Ok(minimal));
    }

    #[test]
    fn tampering_is_forgery_or_unreadable() {
        let code = sign(&claims(), &key(1));
        // Flip each character of the payload in turn: never accepted.
        let payload_end = code.rfind('.').unwrap();
        for i in PREFIX_V1.len()..payload_end {
            let mut bytes = code.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            if tampered == code {
                continue;
            }
            assert!(
                check(&tampered, &key(1)).is_err(),
                "byte {i} tampered was accepted"
            );
        }
        assert_eq!(
            check(&code, &key(2)),
            Err(CodeRefusal::Forged("signature does not match"))
        );
    }

    #[test]
    fn malformed_codes_have_reasons() {
        let code = sign(&claims(), &key(1));
        let truncated = &code[..code.len() - 10];
        for (raw, expected) in [
            (
                truncated.as_bytes().to_vec(),
                CodeRefusal::Forged("signature has the wrong length"),
            ),
            (
                code.as_bytes()[..40].to_vec(),
                CodeRefusal::Unreadable("missing signature"),
            ),
            (
                vec![b'A'; MAX_SCANNED_LEN + 1],
                CodeRefusal::Unreadable("oversized code"),
            ),
            (vec![0xff, 0xfe, 0x00], CodeRefusal::Unreadable("not text")),
            (
                b"ENT2.abc.def".to_vec(),
                CodeRefusal::Unreadable("unsupported code version"),
            ),
            (
                b"ENT9.abc.def".to_vec(),
                CodeRefusal::Unreadable("unsupported code version"),
            ),
            (
                b"ENT1.!!!.AAAA".to_vec(),
                CodeRefusal::Unreadable("payload is not base64url"),
            ),
            (
                b"ENT1.AAAA.AAAA".to_vec(),
                CodeRefusal::Forged("signature has the wrong length"),
            ),
            (b"".to_vec(), CodeRefusal::Unreadable("not a ticket code")),
            (
                b"two words".to_vec(),
                CodeRefusal::Unreadable("not a ticket code"),
            ),
        ] {
            assert_eq!(
                parse_scanned(&raw).map(|_| ()),
                Err(expected),
                "{:?}",
                String::from_utf8_lossy(&raw)
            );
        }
        // Plain spec codes stay accepted, and so do codes that merely start with ENT.
        for plain in ["TKT-2025-ABC123", "ENTRADA-1", "ENT-1"] {
            assert_eq!(
                parse_scanned(plain.as_bytes()),
                Ok(Scanned::Plain(TicketCode::parse(plain).unwrap()))
            );
        }
    }

    /// (presented, serial this database knows, signed-only?) → screening
    #[test]
    fn screening_table() {
        use VerdictCode as V;
        let code = TicketCode::parse("TKT-2025-ABC123").unwrap();
        let signed = |serial| TicketClaims { serial, ..claims() };
        let (s1, s2, s3) = (signed(1), signed(2), signed(3));
        let plain = Presented::Plain(&code);
        let only = CodePolicy {
            signed_codes_only: true,
        };
        let any = CodePolicy::default();
        enum Want {
            Judge,
            NotSynced,
            Refuse(VerdictCode),
        }
        let cases: Vec<(&str, Presented, Option<u32>, CodePolicy, Want)> = vec![
            ("plain, first code", plain, Some(1), any, Want::Judge),
            ("plain, unknown ticket", plain, None, any, Want::Judge),
            (
                "plain after a re-issue",
                plain,
                Some(2),
                any,
                Want::Refuse(V::Revoked),
            ),
            (
                "plain, signed only",
                plain,
                Some(1),
                only,
                Want::Refuse(V::SignedCodeRequired),
            ),
            (
                "plain, signed only, unknown",
                plain,
                None,
                only,
                Want::Refuse(V::SignedCodeRequired),
            ),
            (
                "plain, signed only, re-issued",
                plain,
                Some(3),
                only,
                Want::Refuse(V::SignedCodeRequired),
            ),
            (
                "signed, current",
                Presented::Signed(&s2),
                Some(2),
                any,
                Want::Judge,
            ),
            (
                "signed, current, signed only",
                Presented::Signed(&s1),
                Some(1),
                only,
                Want::Judge,
            ),
            (
                "signed, older serial",
                Presented::Signed(&s1),
                Some(2),
                any,
                Want::Refuse(V::Revoked),
            ),
            (
                "signed, newer than the replica",
                Presented::Signed(&s3),
                Some(2),
                any,
                Want::Judge,
            ),
            (
                "signed, not synced",
                Presented::Signed(&s1),
                None,
                only,
                Want::NotSynced,
            ),
        ];
        for (name, presented, serial, policy, want) in cases {
            let got = screen_code(presented, serial, policy);
            match (want, got) {
                (Want::Judge, Screening::Judge) | (Want::NotSynced, Screening::NotSynced) => {}
                (Want::Refuse(code), Screening::Refuse(v)) => {
                    assert_eq!((v.verdict, v.admit), (code, false), "{name}");
                    assert_eq!(v.ticket_code.as_deref(), Some("TKT-2025-ABC123"), "{name}");
                }
                (_, got) => panic!("{name}: {got:?}"),
            }
        }
    }

    #[test]
    fn refusals_are_red_verdicts_with_their_reason() {
        let code = TicketCode::parse("TKT-2025-ABC123").unwrap();
        for (refusal, ticket, want, message) in [
            (
                CodeRefusal::Unreadable("not text"),
                None,
                VerdictCode::Unreadable,
                "Unreadable code: not text",
            ),
            (
                CodeRefusal::Forged("unknown signing key"),
                Some(&code),
                VerdictCode::Forged,
                "Forged code: unknown signing key",
            ),
        ] {
            let v = refusal.verdict(ticket);
            assert_eq!(
                (v.verdict, v.admit, v.message.as_str()),
                (want, false, message)
            );
            assert_eq!(v.ticket_code, ticket.map(ToString::to_string));
        }
    }

    /// (claims' org, the key here, signature) → the key's word.
    #[test]
    fn key_case_table() {
        let c = claims();
        let signed = sign(&c, &key(1));
        let Ok(Scanned::Signed {
            message, signature, ..
        }) = parse_scanned(signed.as_bytes())
        else {
            panic!("a signed code")
        };
        let good = key(1).verifying_key().to_bytes();
        let other = key(2).verifying_key().to_bytes();
        fn known(public_key: &[u8], retired: bool) -> Option<KnownKey<'_>> {
            Some(KnownKey {
                public_key,
                retired,
            })
        }
        let forged = |why| Err(CodeRefusal::Forged(why));
        type Case<'a> = (&'a str, Orq, Option<KnownKey<'a>>, Result<(), CodeRefusal>);
        let cases: Vec<Case> = vec![
            ("the org's current key", Orq(1), known(&good, false), Ok(())),
            (
                "another org's code",
                Orq(2),
                known(&good, false),
                forged("code of another organisation"),
            ),
            (
                "no such key here",
                Orq(1),
                None,
                forged("unknown signing key"),
            ),
            (
                "key retired",
                Orq(1),
                known(&good, true),
                forged("signing key retired"),
            ),
            (
                "key of the wrong length",
                Orq(1),
                known(&good[..31], false),
                forged("unusable signing key"),
            ),
            (
                "another key's signature",
                Orq(1),
                known(&other, false),
                forged("signature does not match"),
            ),
        ];
        for (name, orq, key, want) in cases {
            assert_eq!(
                check_key(&c, orq, key, &message, &signature),
                want,
                "{name}"
            );
        }
    }

    /// (let in here before?, the code's validity) → the not-synced verdict,
    /// and what the operator's "Let in" makes of it.
    #[test]
    fn not_synced_case_table() {
        use VerdictCode as V;
        let code = claims().ticket_code;
        let inside = Utc.with_ymd_and_hms(2025, 12, 10, 12, 0, 0).unwrap();
        let before = Utc.with_ymd_and_hms(2025, 11, 30, 12, 0, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let earlier = AdmittedHere {
            at: inside - chrono::Duration::minutes(3),
            by: Some(OperatorId(4)),
        };
        let cases: Vec<(&str, Option<AdmittedHere>, DateTime<Utc>, V)> = vec![
            (
                "authentic, within its validity",
                None,
                inside,
                V::AuthenticNotSynced,
            ),
            ("not valid yet", None, before, V::WrongDate),
            ("expired", None, after, V::Expired),
            (
                "let in here already",
                Some(earlier),
                inside,
                V::AlreadyVerified,
            ),
            (
                "let in here already, expired since",
                Some(earlier),
                after,
                V::AlreadyVerified,
            ),
        ];
        for (name, admitted, now, want) in cases {
            let v = screen_not_synced(&claims(), admitted, now);
            assert_eq!((v.verdict, v.admit), (want, false), "{name}");
            assert_eq!(v.ticket_code.as_deref(), Some(code.as_str()), "{name}");
            if want == V::AlreadyVerified {
                assert_eq!(
                    (v.verified_at, v.verified_by),
                    (Some(earlier.at), earlier.by),
                    "{name}"
                );
            }
            // Let in: only the amber verdict, and only once.
            let admitted_now = admit_not_synced(v.clone(), &code, admitted, OperatorId(9), now);
            match admitted_now {
                Ok(a) => {
                    assert_eq!(want, V::AuthenticNotSynced, "{name}");
                    assert_eq!(
                        (a.verdict, a.admit, a.overruled),
                        (V::Admit, true, Some(want)),
                        "{name}"
                    );
                    assert_eq!(
                        (a.verified_at, a.verified_by),
                        (Some(now), Some(OperatorId(9))),
                        "{name}"
                    );
                }
                Err(refused) => assert_eq!(refused.verdict, want, "{name}"),
            }
        }
        // Let in after the amber verdict, but another operator here was quicker.
        let amber = screen_not_synced(&claims(), None, inside);
        let refused =
            admit_not_synced(amber, &code, Some(earlier), OperatorId(9), inside).unwrap_err();
        assert_eq!(
            (refused.verdict, refused.verified_at),
            (V::AlreadyVerified, Some(earlier.at))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

        /// Any bytes: a result, never a panic; random bytes are never a valid signed code.
        #[test]
        fn any_bytes_parse_without_panic(raw in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(Scanned::Signed { message, signature, .. }) = parse_scanned(&raw) {
                prop_assert!(verify_signature(&message, &signature, &key(1).verifying_key()).is_err());
            }
        }

        #[test]
        fn prefixed_garbage_parses_without_panic(tail in "[A-Za-z0-9_.-]{0,300}") {
            let _ = parse_scanned(format!("ENT1.{tail}").as_bytes());
        }
    }
}
