//! The pairing QR code the console shows when an admin adds a gate (issue
//! 16): the code's text is `entrada_domain::pairing` (the one format the gate
//! reads), rendered here as an SVG image. The server's address is
//! `entrada serve --public-url` when set (behind a proxy, the address gates
//! reach), else the one the admin's browser used (`Host`, with https when
//! the server speaks TLS);
//! the CA fingerprint is that of `entrada serve --tls-ca`, whose certificate
//! the server also sends in its TLS chain so a gate can pin it.

use axum::http::{header, HeaderMap};
use base64::Engine;
use qrcode::{EcLevel, QrCode};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::domain::pairing::PairingCode;

/// What a new gate is paired with (shown once, as its token).
#[derive(Debug, Serialize, ToSchema)]
pub struct PairingQr {
    /// The pairing code, `entrada-pair:v1?server=…&token=…[&ca=…]`: holds the device token.
    pub uri: String,
    /// The server address in the code (what the gate will pair with).
    pub server_url: String,
    /// The pairing code as a QR code, an SVG document.
    pub svg: String,
    /// The address names this machine only (localhost): a gate elsewhere
    /// cannot reach it (set `entrada serve --public-url`).
    pub loopback: bool,
}

/// The code for a new gate's `token`: for `public_url` when the server has
/// one, else for the request's `Host`; `None` when that makes no server
/// address a gate could use (the console then shows the token only).
pub fn pairing_qr(
    public_url: Option<&str>,
    headers: &HeaderMap,
    https: bool,
    ca_sha256: Option<&str>,
    token: &str,
) -> Option<PairingQr> {
    let server = match public_url {
        Some(url) => url.to_owned(),
        None => {
            let host = headers.get(header::HOST)?.to_str().ok()?;
            // A Host is an authority only: a `/` would put a path in the
            // code, and `\` or `%` are never part of a host a gate should reach.
            if host.contains(['/', '\\', '%']) {
                return None;
            }
            let scheme = if https { "https" } else { "http" };
            format!("{scheme}://{host}")
        }
    };
    let code = PairingCode::new(&server, token, ca_sha256).ok()?;
    let uri = code.to_uri();
    // M (15 %), as ticket codes: survives a glare on the admin's screen.
    let qr = QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::M).ok()?;
    let svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(320, 320)
        .build();
    Some(PairingQr {
        uri,
        loopback: is_loopback(code.server_url()),
        server_url: code.server_url().to_string(),
        svg,
    })
}

/// Whether a checked server address names this machine only (`localhost`,
/// `127.x.x.x`, `[::1]`): a gate elsewhere cannot reach it.
pub fn is_loopback(server_url: &str) -> bool {
    let authority = server_url
        .split_once("://")
        .map_or(server_url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    // Unspecified addresses (0.0.0.0, ::) reach this machine only too, as do
    // IPv4-mapped loopback addresses.
    let local = |ip: std::net::IpAddr| {
        ip.is_loopback()
            || ip.is_unspecified()
            || matches!(ip, std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback() || v4.is_unspecified()))
    };
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(local)
}

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("no PEM certificate (-----BEGIN CERTIFICATE-----) in it")]
    NoCertificate,
    #[error("its certificate is not valid base64")]
    Base64,
    #[error("the server's certificate chain holds no certificate")]
    NoServerCertificate,
    #[error("the server's certificate does not lead to this CA: {0}")]
    NotSignedBy(String),
}

/// Checks at start that the server's certificate chain (PEM, its own
/// certificate first) leads to the CA of `ca_pem`: a pairing code pinning a
/// CA that did not sign the server's certificate would leave every gate
/// paired with it unable to connect. Only the chain (signatures, validity,
/// CA constraints) is checked, not the names: those are each gate's own check.
pub fn check_chain_leads_to_ca(chain_pem: &[u8], ca_pem: &[u8]) -> Result<(), CaError> {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime};
    use rustls::CertificateError::{
        ExpiredContext, NotValidForName, NotValidForNameContext, NotValidYetContext,
    };
    use std::time::Duration;

    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| CaError::NoServerCertificate)?;
    let (server, intermediates) = chain.split_first().ok_or(CaError::NoServerCertificate)?;
    let ca = CertificateDer::from_pem_slice(ca_pem).map_err(|_| CaError::NoCertificate)?;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca)
        .map_err(|e| CaError::NotSignedBy(e.to_string()))?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        std::sync::Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|e| CaError::NotSignedBy(e.to_string()))?;
    // A name no certificate holds: the answer "not valid for this name"
    // comes only once the chain itself checked out. Dates are not this
    // check's business either: an expired certificate (a renewal that failed,
    // a clock behind at boot) still leads to the CA, and stopping the server
    // for it would take the customer page and the console down too. But the
    // verifier looks at dates before signatures, so "expired" says nothing of
    // the CA: the chain is checked again at a moment inside the validity it
    // reported (a few times: an intermediate may be out of date too), and
    // only a chain that then leads to the CA starts, with a warning.
    let name = ServerName::try_from("chain-check.invalid").expect("a valid DNS name");
    let mut at = UnixTime::now();
    let mut out_of_date = None;
    for _ in 0..4 {
        let retry_at = match verifier.verify_server_cert(server, intermediates, &name, &[], at) {
            Ok(_)
            | Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) => {
                if let Some(e) = out_of_date {
                    tracing::warn!(error = %e, "the TLS certificate is outside its validity dates: gates will refuse it");
                }
                return Ok(());
            }
            Err(rustls::Error::InvalidCertificate(ExpiredContext { not_after, .. })) => {
                UnixTime::since_unix_epoch(Duration::from_secs(
                    not_after.as_secs().saturating_sub(1),
                ))
            }
            Err(rustls::Error::InvalidCertificate(NotValidYetContext { not_before, .. })) => {
                UnixTime::since_unix_epoch(Duration::from_secs(not_before.as_secs() + 1))
            }
            Err(e) => return Err(CaError::NotSignedBy(e.to_string())),
        };
        out_of_date.get_or_insert_with(|| "expired or not yet valid".to_owned());
        at = retry_at;
    }
    Err(CaError::NotSignedBy(
        "no moment at which every certificate of the chain is valid".into(),
    ))
}

/// The SHA-256 (64 lower-case hex digits) of the first certificate of a
/// PEM file: the CA a pairing code names.
pub fn ca_fingerprint(pem: &[u8]) -> Result<String, CaError> {
    let der = first_certificate_der(pem)?;
    Ok(Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn first_certificate_der(pem: &[u8]) -> Result<Vec<u8>, CaError> {
    let text = String::from_utf8_lossy(pem);
    let begin = "-----BEGIN CERTIFICATE-----";
    let start = text.find(begin).ok_or(CaError::NoCertificate)? + begin.len();
    let len = text[start..]
        .find("-----END CERTIFICATE-----")
        .ok_or(CaError::NoCertificate)?;
    let b64: String = text[start..start + len]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| CaError::Base64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_names_the_address_the_browser_used() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "10.0.0.5:8443".parse().unwrap());
        let fp = "ab".repeat(32);
        let qr = pairing_qr(None, &headers, true, Some(&fp), "dev_00ff").unwrap();
        let code = PairingCode::parse(&qr.uri).unwrap();
        assert_eq!(code.server_url(), "https://10.0.0.5:8443");
        assert_eq!(qr.server_url, "https://10.0.0.5:8443");
        assert_eq!(code.token(), "dev_00ff");
        assert_eq!(code.ca_sha256(), Some(fp.as_str()));
        assert!(qr.svg.contains("<svg"), "{}", &qr.svg[..80]);
        // Plain http: no fingerprint can be carried.
        let qr = pairing_qr(None, &headers, false, None, "dev_00ff").unwrap();
        assert_eq!(
            PairingCode::parse(&qr.uri).unwrap().server_url(),
            "http://10.0.0.5:8443"
        );
        // A Host no gate could use gives no code (the token is still shown).
        headers.insert(header::HOST, "evil@host".parse().unwrap());
        assert!(pairing_qr(None, &headers, true, None, "dev_00ff").is_none());
        assert!(pairing_qr(None, &HeaderMap::new(), true, None, "dev_00ff").is_none());
        for bad in [
            "h/entrada",
            "evil.example\\bank.example",
            "h%2Fx",
            "[fe80::1%25eth0]",
        ] {
            headers.insert(header::HOST, bad.parse().unwrap());
            assert!(
                pairing_qr(None, &headers, true, None, "dev_00ff").is_none(),
                "{bad}"
            );
        }
    }

    #[test]
    fn loopback_addresses() {
        for (url, loopback) in [
            ("http://localhost:8080", true),
            ("https://LOCALHOST", true),
            ("http://gate.localhost:1", true),
            ("http://127.0.0.1:8080", true),
            ("http://127.1.2.3", true),
            ("http://[::1]:8080", true),
            ("https://10.0.0.5:8443", false),
            ("https://entrada.example/base", false),
            ("http://[fe80::1]:80", false),
            ("http://localhost.example", false),
            ("http://localhost.:8080", true),
            ("http://0.0.0.0:8080", true),
            ("http://[::]:8080", true),
            ("http://[::ffff:127.0.0.1]:8080", true),
            ("http://[::ffff:10.0.0.5]:8080", false),
        ] {
            assert_eq!(is_loopback(url), loopback, "{url}");
        }
    }

    #[test]
    fn a_public_url_wins_over_the_host_and_localhost_is_flagged() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        let local = pairing_qr(None, &headers, false, None, "dev_00ff").unwrap();
        assert_eq!(local.server_url, "http://127.0.0.1:8080");
        assert!(local.loopback, "a gate elsewhere cannot reach 127.0.0.1");
        // Behind a proxy: the public address, whatever Host the proxy sent.
        let public = pairing_qr(
            Some("https://entrada.example"),
            &headers,
            false,
            None,
            "dev_00ff",
        )
        .unwrap();
        assert_eq!(public.server_url, "https://entrada.example");
        assert!(!public.loopback);
        assert_eq!(
            PairingCode::parse(&public.uri).unwrap().server_url(),
            "https://entrada.example"
        );
        // Even with no Host at all.
        assert!(pairing_qr(
            Some("https://entrada.example"),
            &HeaderMap::new(),
            false,
            None,
            "dev_00ff"
        )
        .is_some());
    }

    #[test]
    fn the_fingerprint_is_the_first_certificates_sha256() {
        // DER bytes "hello" as a fake certificate: the hash is of the DER.
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\naGVs\nbG8=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            ca_fingerprint(pem).unwrap(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(matches!(
            ca_fingerprint(b"nothing"),
            Err(CaError::NoCertificate)
        ));
        assert!(matches!(
            ca_fingerprint(b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----"),
            Err(CaError::Base64)
        ));
    }
}
