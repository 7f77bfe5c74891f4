//! The pairing code (issue 16): what the console's QR code tells a new gate —
//! the server's address, the gate's device token and, when the server runs
//! its own certificate authority, that CA certificate's SHA-256 fingerprint.
//! One format, built by the server and read by the gate through this module
//! only:
//!
//! ```text
//! entrada-pair:v1?server=https://10.0.0.5:8443&token=dev_…&ca=<64 hex digits>
//! ```
//!
//! The server address is percent-encoded where it must be (`%`, `&`, `=`,
//! `#`, `+`, `?`). A code is at most [`MAX_LEN`] characters; anything else
//! — another version, an unknown or repeated field, a server that is not
//! `http(s)://host[:port][/path]`, a fingerprint with a plain `http://`
//! server — is refused with a reason, never half-read.

use std::fmt::Write as _;

/// What every pairing code starts with (compared without regard to case,
/// as a URI scheme is).
pub const SCHEME: &str = "entrada-pair:";
/// The one version this build writes and reads.
pub const VERSION: &str = "v1";
/// The longest code read: a long server address and token fit in a quarter
/// of it, and a QR code of this size is still easy to scan from a screen.
pub const MAX_LEN: usize = 1024;
/// The longest server address.
pub const MAX_SERVER_LEN: usize = 512;
/// Device tokens are `dev_` + 64 hex digits; this bounds any token format.
pub const MAX_TOKEN_LEN: usize = 200;

/// A checked pairing code. Fields are private: every value went through
/// [`PairingCode::new`] or [`PairingCode::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingCode {
    server_url: String,
    token: String,
    ca_sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    /// The text is something else (a ticket code, a URL): not for pairing.
    #[error("this is not an Entrada pairing code")]
    NotPairing,
    /// It says it is a pairing code, but it cannot be used.
    #[error("this pairing code cannot be used: {0}")]
    Invalid(String),
}

impl PairingError {
    /// The stable machine code shown with the message.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotPairing => "NOT_A_PAIRING_CODE",
            Self::Invalid(_) => "INVALID_PAIRING_CODE",
        }
    }
}

fn invalid(why: impl Into<String>) -> PairingError {
    PairingError::Invalid(why.into())
}

/// Whether `text` claims to be a pairing code (scheme only). The gate's
/// ticket scan uses this to refuse one instead of judging it as a ticket.
pub fn looks_like_pairing(text: &str) -> bool {
    let text = text.trim_start();
    text.len() >= SCHEME.len()
        && text.is_char_boundary(SCHEME.len())
        && text[..SCHEME.len()].eq_ignore_ascii_case(SCHEME)
}

impl PairingCode {
    /// A code for `server_url` (checked and normalised: lower-case scheme,
    /// no trailing slash), `token` and the CA's fingerprint (64 hex digits,
    /// any case; only with an `https://` server).
    pub fn new(
        server_url: &str,
        token: &str,
        ca_sha256: Option<&str>,
    ) -> Result<Self, PairingError> {
        let server_url = check_server(server_url)?;
        check_token(token)?;
        let ca_sha256 = ca_sha256.map(check_fingerprint).transpose()?;
        if ca_sha256.is_some() && !server_url.starts_with("https://") {
            return Err(invalid(
                "a CA fingerprint needs an https:// server (plain http has no certificate)",
            ));
        }
        let code = Self {
            server_url,
            token: token.to_string(),
            ca_sha256,
        };
        if code.to_uri().len() > MAX_LEN {
            return Err(invalid(format!("longer than {MAX_LEN} characters")));
        }
        Ok(code)
    }

    /// Reads a scanned code. [`PairingError::NotPairing`] when it is not one
    /// at all; [`PairingError::Invalid`] with the reason when it is broken.
    pub fn parse(text: &str) -> Result<Self, PairingError> {
        if !looks_like_pairing(text) {
            return Err(PairingError::NotPairing);
        }
        let text = text.trim();
        if text.len() > MAX_LEN {
            return Err(invalid(format!("longer than {MAX_LEN} characters")));
        }
        if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(invalid(format!("unexpected character {c:?}")));
        }
        let rest = &text[SCHEME.len()..];
        let (version, query) = rest
            .split_once('?')
            .ok_or_else(|| invalid("no fields (expected `?server=…&token=…`)"))?;
        if version != VERSION {
            return Err(invalid(format!(
                "version {version:?} is not one this gate reads ({VERSION}): update the gate or the server"
            )));
        }
        let (mut server, mut token, mut ca) = (None, None, None);
        for field in query.split('&') {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| invalid(format!("field {field:?} has no value")))?;
            let slot = match key {
                "server" => &mut server,
                "token" => &mut token,
                "ca" => &mut ca,
                _ => return Err(invalid(format!("unknown field {key:?}"))),
            };
            if slot.is_some() {
                return Err(invalid(format!("field {key:?} appears twice")));
            }
            *slot = Some(percent_decode(value)?);
        }
        let server = server.ok_or_else(|| invalid("no server address"))?;
        let token = token.ok_or_else(|| invalid("no device token"))?;
        Self::new(&server, &token, ca.as_deref())
    }

    /// The text the QR code carries.
    pub fn to_uri(&self) -> String {
        let mut uri = format!(
            "{SCHEME}{VERSION}?server={}&token={}",
            percent_encode(&self.server_url),
            percent_encode(&self.token)
        );
        if let Some(ca) = &self.ca_sha256 {
            let _ = write!(uri, "&ca={ca}");
        }
        uri
    }

    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The CA certificate's SHA-256 (of its DER bytes), 64 lower-case hex
    /// digits; `None`: the gate uses the CAs it already trusts.
    pub fn ca_sha256(&self) -> Option<&str> {
        self.ca_sha256.as_deref()
    }
}

/// A server address as a pairing code may carry it (`entrada serve
/// --public-url` is checked with this at start): see [`check_server`].
pub fn server_address(raw: &str) -> Result<String, PairingError> {
    check_server(raw)
}

/// `http(s)://host[:port][/path]`: printable ASCII, no user name or password
/// (an `@` would let a code show one host and mean another), no query or
/// fragment. Returns it with a lower-case scheme and no trailing slash.
fn check_server(raw: &str) -> Result<String, PairingError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(invalid("the server address is empty"));
    }
    if raw.len() > MAX_SERVER_LEN {
        return Err(invalid(format!(
            "the server address is longer than {MAX_SERVER_LEN} characters"
        )));
    }
    if let Some(c) = raw.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(invalid(format!(
            "the server address has an unexpected character {c:?}"
        )));
    }
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or_else(|| invalid("the server address must start with https:// or http://"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err(invalid(format!(
            "the server address must be https:// or http://, not {scheme}://"
        )));
    }
    if rest.contains(['?', '#']) {
        return Err(invalid(
            "the server address may not have a query or fragment",
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(invalid("the server address may not carry a user name"));
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| invalid("the server address has an unclosed [IPv6 address]"))?;
        check_port(after.strip_prefix(':'), after.is_empty())?;
        host
    } else {
        match authority.split_once(':') {
            Some((host, port)) => {
                check_port(Some(port), false)?;
                host
            }
            None => authority,
        }
    };
    if host.is_empty() {
        return Err(invalid("the server address has no host"));
    }
    // A name or IPv4 address of [A-Za-z0-9.-], or an IPv6 address between
    // brackets: anything else (a `\`, which URL parsers read as `/`, a `%`
    // zone) could make the host shown differ from the host reached.
    let host_ok = if authority.starts_with('[') {
        host.bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        host.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    if !host_ok {
        return Err(invalid(
            "the server address's host may hold letters, digits, `.` and `-` only (or an [IPv6 address])",
        ));
    }
    Ok(format!(
        "{scheme}://{authority}{}",
        path.trim_end_matches('/')
    ))
}

fn check_port(port: Option<&str>, none_ok: bool) -> Result<(), PairingError> {
    match port {
        None if none_ok => Ok(()),
        Some(p) if p.parse::<u16>().is_ok_and(|p| p > 0) => Ok(()),
        _ => Err(invalid("the server address has a bad port")),
    }
}

fn check_token(token: &str) -> Result<(), PairingError> {
    if token.is_empty() {
        return Err(invalid("the device token is empty"));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid(format!(
            "the device token is longer than {MAX_TOKEN_LEN} characters"
        )));
    }
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(invalid(
            "the device token may hold letters, digits, `_`, `-` and `.` only",
        ));
    }
    Ok(())
}

fn check_fingerprint(raw: &str) -> Result<String, PairingError> {
    // `AB:CD:…` as openssl prints it is accepted too.
    let hex: String = raw.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(
            "the CA fingerprint must be a SHA-256: 64 hexadecimal digits",
        ));
    }
    Ok(hex.to_ascii_lowercase())
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/[]".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn percent_decode(text: &str) -> Result<String, PairingError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid("a bad %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid("a %-escape that is not UTF-8"))
}

/// Whether a scanned pairing code may be used on this gate, given what it is
/// paired with now: see [`may_pair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingDecision {
    /// Not paired (a standalone gate: its demo data is replaced), or the
    /// same server again (a new token, a new CA): the supervisor may confirm.
    Proceed,
    /// Paired with another server and scans not yet uploaded: pairing now
    /// would send them to the new server (or strand them). Sync first.
    SyncFirst,
}

impl PairingDecision {
    /// The stable machine code of a refusal.
    pub fn code(self) -> Option<&'static str> {
        match self {
            Self::Proceed => None,
            Self::SyncFirst => Some("PAIRING_SYNC_FIRST"),
        }
    }
}

/// The rule for a scanned pairing code (issue 16): `current_server` is the
/// server the gate is paired with (`None`: standalone), `pending` its scans
/// not yet uploaded. A gate with pending scans is never moved to another
/// server by a code: its scans belong to the current one, and a code in
/// front of a public camera must not be able to take them elsewhere. Servers
/// are compared as [`PairingCode`] writes them (scheme and host case, a
/// trailing slash are not significant).
pub fn may_pair(current_server: Option<&str>, pending: u64, code: &PairingCode) -> PairingDecision {
    match current_server {
        None => PairingDecision::Proceed,
        Some(current) if same_server(current, code.server_url()) => PairingDecision::Proceed,
        Some(_) if pending == 0 => PairingDecision::Proceed,
        Some(_) => PairingDecision::SyncFirst,
    }
}

fn same_server(a: &str, b: &str) -> bool {
    let norm = |s: &str| check_server(s).unwrap_or_else(|_| s.trim().to_string());
    let (a, b) = (norm(a), norm(b));
    // Scheme and authority are case-insensitive; a path is not.
    let split = |s: &str| -> (String, String) {
        let (scheme, rest) = s.split_once("://").unwrap_or(("", s));
        let (auth, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        (
            format!("{scheme}://{}", auth.to_ascii_lowercase()),
            path.to_string(),
        )
    };
    split(&a) == split(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "dev_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const FP: &str = "3f1c2e0a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e";

    #[test]
    fn server_addresses_are_checked_and_normalised() {
        assert_eq!(
            server_address("HTTPS://entrada.example/base/").unwrap(),
            "https://entrada.example/base"
        );
        assert!(server_address("ftp://entrada.example").is_err());
        assert!(server_address("https://user@entrada.example").is_err());
    }

    #[test]
    fn a_code_round_trips() {
        for (server, ca) in [
            ("https://10.0.0.5:8443", Some(FP)),
            ("https://gate-server.local", None),
            ("http://127.0.0.1:8080", None),
            ("https://[fe80::1]:8443/entrada", Some(FP)),
            ("https://example.org/a%26b", None),
        ] {
            let code = PairingCode::new(server, TOKEN, ca).unwrap();
            let uri = code.to_uri();
            assert!(uri.starts_with("entrada-pair:v1?server="), "{uri}");
            assert_eq!(PairingCode::parse(&uri).unwrap(), code, "{uri}");
            assert_eq!(code.server_url(), server);
            assert_eq!(code.token(), TOKEN);
            assert_eq!(code.ca_sha256(), ca);
        }
    }

    #[test]
    fn good_codes_read_as_written_by_hand() {
        for (text, server, ca) in [
            (
                format!("entrada-pair:v1?server=https://h:8443&token={TOKEN}&ca={FP}"),
                "https://h:8443",
                Some(FP.to_string()),
            ),
            // Field order is free; the scheme's case and a trailing slash are not significant.
            (
                format!("ENTRADA-PAIR:v1?token={TOKEN}&server=HTTPS%3A%2F%2Fh%2F"),
                "https://h",
                None,
            ),
            // A fingerprint as openssl prints it (upper case, colons).
            (
                format!(
                    "entrada-pair:v1?server=https://h&token={TOKEN}&ca={}",
                    FP.to_uppercase()
                        .as_bytes()
                        .chunks(2)
                        .map(|c| std::str::from_utf8(c).unwrap())
                        .collect::<Vec<_>>()
                        .join(":")
                ),
                "https://h",
                Some(FP.to_string()),
            ),
            // Surrounding whitespace from a scanner's line end.
            (
                format!(" entrada-pair:v1?server=http://localhost:8080&token={TOKEN}\n"),
                "http://localhost:8080",
                None,
            ),
        ] {
            let code = PairingCode::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(code.server_url(), server, "{text}");
            assert_eq!(code.ca_sha256(), ca.as_deref(), "{text}");
        }
    }

    #[test]
    fn bad_codes_are_refused_with_a_reason() {
        let long_server = format!("https://{}.org", "a".repeat(600));
        let huge = format!(
            "entrada-pair:v1?server=https://h&token={TOKEN}&ca={}",
            "0".repeat(2000)
        );
        for (text, why) in [
            (
                format!("entrada-pair:v2?server=https://h&token={TOKEN}"),
                "version",
            ),
            (
                format!("entrada-pair:?server=https://h&token={TOKEN}"),
                "version",
            ),
            ("entrada-pair:v1".to_string(), "no fields"),
            (format!("entrada-pair:v1?token={TOKEN}"), "no server"),
            (
                "entrada-pair:v1?server=https://h".to_string(),
                "no device token",
            ),
            (
                format!("entrada-pair:v1?server=ftp://h&token={TOKEN}"),
                "https:// or http://",
            ),
            (
                format!("entrada-pair:v1?server=javascript:alert(1)&token={TOKEN}"),
                "must start with",
            ),
            (
                format!("entrada-pair:v1?server=h:8443&token={TOKEN}"),
                "must start with",
            ),
            (
                format!("entrada-pair:v1?server=https://&token={TOKEN}"),
                "no host",
            ),
            (
                format!("entrada-pair:v1?server=https://h:0&token={TOKEN}"),
                "bad port",
            ),
            (
                format!("entrada-pair:v1?server=https://h:99999&token={TOKEN}"),
                "bad port",
            ),
            (
                format!("entrada-pair:v1?server=https://[::1&token={TOKEN}"),
                "unclosed",
            ),
            (
                format!("entrada-pair:v1?server=https://bank.example%40evil.example&token={TOKEN}"),
                "user name",
            ),
            (
                format!("entrada-pair:v1?server=https://h%3Fx%3D1&token={TOKEN}"),
                "query",
            ),
            (
                format!("entrada-pair:v1?server=https://h%20x&token={TOKEN}"),
                "unexpected character",
            ),
            // A `\` is read as `/` by URL parsers: the host shown is not the one reached.
            (
                format!(
                    "entrada-pair:v1?server=https://evil.example%5C.bank.example&token={TOKEN}"
                ),
                "letters, digits, `.` and `-` only",
            ),
            (
                format!("entrada-pair:v1?server=https://h_x!&token={TOKEN}"),
                "letters, digits, `.` and `-` only",
            ),
            (
                format!("entrada-pair:v1?server=https://[fe80::1%25eth0]:8443&token={TOKEN}"),
                "letters, digits, `.` and `-` only",
            ),
            (
                format!("entrada-pair:v1?server=https://[fe80::g]&token={TOKEN}"),
                "letters, digits, `.` and `-` only",
            ),
            (
                format!("entrada-pair:v1?server=http://h&token={TOKEN}&ca={FP}"),
                "needs an https",
            ),
            (
                format!("entrada-pair:v1?server=https://h&token={TOKEN}&ca=abc"),
                "64 hexadecimal",
            ),
            (
                format!(
                    "entrada-pair:v1?server=https://h&token={TOKEN}&ca={}",
                    "g".repeat(64)
                ),
                "64 hexadecimal",
            ),
            (
                "entrada-pair:v1?server=https://h&token=".to_string(),
                "token is empty",
            ),
            (
                "entrada-pair:v1?server=https://h&token=a%0Ab".to_string(),
                "letters, digits",
            ),
            (
                format!("entrada-pair:v1?server=https://h&token={}", "a".repeat(201)),
                "longer than 200",
            ),
            (
                format!("entrada-pair:v1?server=https://h&token={TOKEN}&pin=1234"),
                "unknown field",
            ),
            (
                format!("entrada-pair:v1?server=https://h&server=https://e&token={TOKEN}"),
                "twice",
            ),
            (
                format!("entrada-pair:v1?server=https://h&token={TOKEN}&ca"),
                "no value",
            ),
            (
                format!("entrada-pair:v1?server=https://h%ZZ&token={TOKEN}"),
                "%-escape",
            ),
            (
                format!("entrada-pair:v1?server=https://h%FF&token={TOKEN}"),
                "UTF-8",
            ),
            (
                format!("entrada-pair:v1?server={}&token={TOKEN}", long_server),
                "longer than 512",
            ),
            (huge, "longer than 1024"),
            (
                format!("entrada-pair:v1?server=https://h&token={TOKEN} x"),
                "unexpected character",
            ),
        ] {
            match PairingCode::parse(&text) {
                Err(e @ PairingError::Invalid(_)) => {
                    assert!(
                        e.to_string().contains(why),
                        "{text}: {e} (expected {why:?})"
                    );
                    assert_eq!(e.code(), "INVALID_PAIRING_CODE");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn other_codes_are_not_pairing_codes() {
        for text in [
            "",
            "ENT1.abc.def",
            "TCK-0001",
            "https://example.org/?entrada-pair:v1",
            "entrada-pai",
            "éntrada-pair:v1?server=https://h",
        ] {
            assert!(!looks_like_pairing(text), "{text}");
            assert_eq!(
                PairingCode::parse(text),
                Err(PairingError::NotPairing),
                "{text}"
            );
            assert_eq!(PairingError::NotPairing.code(), "NOT_A_PAIRING_CODE");
        }
        assert!(looks_like_pairing("Entrada-Pair:anything"));
    }

    #[test]
    fn may_pair_case_table() {
        use PairingDecision::{Proceed, SyncFirst};
        let code = PairingCode::new("https://10.0.0.5:8443", TOKEN, None).unwrap();
        for (current, pending, want) in [
            // Standalone (demo data, replaced): always.
            (None, 0, Proceed),
            (None, 7, Proceed),
            // The same server again (a new token or CA): its scans still go there.
            (Some("https://10.0.0.5:8443"), 0, Proceed),
            (Some("https://10.0.0.5:8443"), 7, Proceed),
            (Some("HTTPS://10.0.0.5:8443/"), 7, Proceed),
            // Another server, nothing waiting: the supervisor decides.
            (Some("https://other.example:8443"), 0, Proceed),
            // Another server with scans not uploaded: sync first.
            (Some("https://other.example:8443"), 1, SyncFirst),
            (Some("https://10.0.0.5:9443"), 3, SyncFirst),
            (Some("http://10.0.0.5:8443"), 3, SyncFirst),
            (Some("https://10.0.0.5:8443/other"), 3, SyncFirst),
        ] {
            assert_eq!(
                may_pair(current, pending, &code),
                want,
                "{current:?} {pending}"
            );
        }
        assert_eq!(SyncFirst.code(), Some("PAIRING_SYNC_FIRST"));
        assert_eq!(Proceed.code(), None);
    }
}
