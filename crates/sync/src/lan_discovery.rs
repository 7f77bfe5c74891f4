//! Gate to gate (issue 14): finding the venue's other gates on the LAN by
//! DNS-SD over mDNS (`_entrada-gate._tcp.local.`).
//!
//! A gate whose exchange listens advertises its LAN port with a TXT record
//! that says which gate it is — device id, org, venue and a fingerprint of
//! its public key; nothing secret — and browses for the others. Each
//! advertisement of another gate of the same venue becomes a *candidate*
//! beside the static `--peer` list: one dialer per advertised gate pushes
//! this gate's events to it, exactly as a static peer's does.
//!
//! An advertisement is an untrusted hint: anyone on the LAN can send one.
//! A candidate is only ever talked to over the exchange's pinned TLS
//! ([`LanExchange::dial_once`]), so a forged advertisement (another
//! address, a copied TXT record) ends in a refused handshake, logged, and
//! changes nothing else. The venue in the TXT record only spares the gates
//! of other venues a handshake that would fail anyway.
//!
//! The decisions (which advertisement is a candidate, the TXT record, the
//! on/off switch) are pure functions tested below; [`run`] wires them to
//! the `mdns-sd` daemon (its own thread; a channel into tokio).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use entrada_domain::sync::protocol::DeviceInfo;
use entrada_store::Store;
use sha2::{Digest, Sha256};

use crate::lan::{LanConfig, LanError, LanExchange};

/// The DNS-SD service type of a gate's LAN exchange.
pub const SERVICE_TYPE: &str = "_entrada-gate._tcp.local.";
/// Longest wait between two dials of a candidate that is not reached.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Advertised gates remembered at once (a venue has tens of gates; a LAN
/// flooded with advertisements cannot grow the map, nor the dialers).
pub const MAX_CANDIDATES: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("this database is not paired: pair it with the server first")]
    NotPaired,
    #[error("mDNS: {0}")]
    Mdns(#[from] mdns_sd::Error),
    #[error(transparent)]
    Lan(#[from] LanError),
    #[error(transparent)]
    Store(#[from] entrada_store::StoreError),
}

/// Whether discovery runs: on unless `--no-mdns` is given or
/// `ENTRADA_LAN_MDNS` says off (`0`, `false`, `off`, `no`), and never for an
/// exchange that listens on a loopback address only (nobody on the LAN
/// could reach what it would advertise).
pub fn wanted(no_mdns: bool, env: Option<&str>, listen: Option<SocketAddr>) -> bool {
    let env_off = env.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "0" | "false" | "off" | "no"
        )
    });
    let reachable = listen.is_some_and(|a| !a.ip().is_loopback());
    !no_mdns && !env_off && reachable
}

/// The first 16 hex characters of the SHA-256 of an Ed25519 public key
/// (given as its 64 hex characters): enough to tell gates apart in an
/// advertisement; the TLS handshake checks the whole key.
pub fn fingerprint(public_key_hex: &str) -> String {
    let digest = Sha256::digest(public_key_hex.trim().to_ascii_lowercase().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// What a gate says about itself in its advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    pub device_id: i64,
    pub orq: i64,
    pub venue_id: i64,
    pub fingerprint: String,
}

impl Advert {
    pub fn of(info: &DeviceInfo, public_key_hex: &str) -> Self {
        Self {
            device_id: info.device_id,
            orq: info.orq,
            venue_id: info.venue_id,
            fingerprint: fingerprint(public_key_hex),
        }
    }

    /// The DNS-SD instance name (unique per device of an org).
    pub fn instance(&self) -> String {
        format!("entrada-gate-{}-{}", self.orq, self.device_id)
    }

    /// The TXT record's key/value pairs.
    pub fn txt(&self) -> Vec<(&'static str, String)> {
        vec![
            ("device", self.device_id.to_string()),
            ("org", self.orq.to_string()),
            ("venue", self.venue_id.to_string()),
            ("key", self.fingerprint.clone()),
        ]
    }

    /// Reads a TXT record back; `None` when a field is missing or malformed.
    pub fn from_txt(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let num = |k: &str| get(k)?.trim().parse::<i64>().ok();
        let fingerprint = get("key")?;
        if fingerprint.len() != 16 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Self {
            device_id: num("device")?,
            orq: num("org")?,
            venue_id: num("venue")?,
            fingerprint: fingerprint.to_ascii_lowercase(),
        })
    }
}

/// One resolved advertisement.
#[derive(Debug, Clone)]
pub struct Seen {
    pub instance: String,
    /// `None` when the TXT record did not parse.
    pub advert: Option<Advert>,
    pub addrs: Vec<IpAddr>,
    pub port: u16,
}

/// What discovery makes of an advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// This gate's own advertisement.
    Ours,
    /// A TXT record without a device, org, venue or key.
    Malformed,
    /// A gate of another venue or org: never dialled.
    OtherVenue,
    /// Every address is already a static peer (dialled as such).
    Static,
    /// No address this gate can dial.
    NoAddress,
    /// Addresses to dial, IPv4 first.
    Candidate(Vec<SocketAddr>),
}

/// Judges one advertisement for the gate `me`, whose static peers are
/// `static_peers`.
pub fn judge(me: &Advert, seen: &Seen, static_peers: &[SocketAddr]) -> Verdict {
    let Some(advert) = &seen.advert else {
        return Verdict::Malformed;
    };
    if advert.device_id == me.device_id && advert.orq == me.orq
        || advert.fingerprint == me.fingerprint
    {
        return Verdict::Ours;
    }
    if advert.orq != me.orq || advert.venue_id != me.venue_id {
        return Verdict::OtherVenue;
    }
    let mut addrs: Vec<SocketAddr> = seen
        .addrs
        .iter()
        // A loopback address would point this gate at its own local
        // services (discovery is off on a loopback exchange anyway).
        .filter(|ip| !ip.is_loopback())
        .filter(|ip| match ip {
            IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_multicast() && !v4.is_broadcast(),
            // A link-local IPv6 address needs its interface, which an
            // address without scope cannot carry: skipped.
            IpAddr::V6(v6) => {
                !v6.is_unspecified() && !v6.is_multicast() && (v6.segments()[0] & 0xffc0) != 0xfe80
            }
        })
        .map(|ip| SocketAddr::new(*ip, seen.port))
        .collect();
    if seen.port == 0 || addrs.is_empty() {
        return Verdict::NoAddress;
    }
    addrs.sort_by_key(|a| (a.is_ipv6(), *a));
    addrs.dedup();
    if addrs.iter().any(|a| static_peers.contains(a)) {
        return Verdict::Static;
    }
    Verdict::Candidate(addrs)
}

/// The candidates discovery found, by instance name, bounded.
#[derive(Debug, Default)]
pub struct Candidates {
    by_instance: HashMap<String, Vec<SocketAddr>>,
}

/// What [`Candidates::offer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// A gate not seen before: start its dialer.
    New,
    /// Known gate, addresses replaced.
    Updated,
    /// The map is full.
    Full,
}

impl Candidates {
    pub fn offer(&mut self, instance: &str, addrs: Vec<SocketAddr>) -> Offered {
        if let Some(known) = self.by_instance.get_mut(instance) {
            *known = addrs;
            return Offered::Updated;
        }
        if self.by_instance.len() >= MAX_CANDIDATES {
            return Offered::Full;
        }
        self.by_instance.insert(instance.to_string(), addrs);
        Offered::New
    }

    pub fn remove(&mut self, instance: &str) -> bool {
        self.by_instance.remove(instance).is_some()
    }

    pub fn addrs(&self, instance: &str) -> Option<Vec<SocketAddr>> {
        self.by_instance.get(instance).cloned()
    }

    pub fn len(&self) -> usize {
        self.by_instance.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_instance.is_empty()
    }
}

/// Whether a dial failed at the pinned handshake (the other side is not a
/// listed gate of this venue, or refused this one) rather than not being
/// reached at all.
pub fn refused_handshake(e: &LanError) -> bool {
    match e {
        LanError::Tls(_) => true,
        LanError::Io(io) => io.kind() == std::io::ErrorKind::InvalidData,
        LanError::Peer(m) => m == "an unlisted key" || m == "handshake timed out",
        _ => false,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Advertises this gate's exchange on `port` and dials every other gate of
/// its venue that advertises, until the mDNS daemon fails. `static_peers`
/// (the `--peer` list) are dialled by the exchange itself, not again here.
pub async fn run(
    exchange: Arc<LanExchange>,
    store: Arc<Store>,
    port: u16,
    static_peers: Vec<String>,
) -> Result<(), DiscoveryError> {
    let me = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || -> Result<_, DiscoveryError> {
            let pairing = store.pairing()?.ok_or(DiscoveryError::NotPaired)?;
            let key = store
                .device_public_key()?
                .ok_or(DiscoveryError::NotPaired)?;
            Ok(Advert::of(&pairing.info, &key))
        })
        .await
        .map_err(|e| LanError::Peer(e.to_string()))??
    };
    let static_peers: Vec<SocketAddr> =
        static_peers.iter().filter_map(|p| p.parse().ok()).collect();
    let daemon = Daemon(mdns_sd::ServiceDaemon::new()?);
    let daemon = &daemon.0;
    let host = format!("{}.local.", me.instance());
    let service =
        mdns_sd::ServiceInfo::new(SERVICE_TYPE, &me.instance(), &host, "", port, &me.txt()[..])?
            .enable_addr_auto();
    daemon.register(service)?;
    let events = daemon.browse(SERVICE_TYPE)?;
    tracing::info!(instance = %me.instance(), port, "LAN discovery: advertising and browsing {SERVICE_TYPE}");
    let candidates = Arc::new(Mutex::new(Candidates::default()));
    // Owned here: when discovery is dropped (the exchange turned off), its
    // dialers end with it.
    let mut dialers = Dialers::default();
    loop {
        dialers.reap();
        let event = match events.recv_async().await {
            Ok(e) => e,
            Err(e) => return Err(DiscoveryError::Mdns(mdns_sd::Error::Msg(e.to_string()))),
        };
        match event {
            mdns_sd::ServiceEvent::ServiceResolved(resolved) => {
                let seen = Seen {
                    instance: resolved.fullname.clone(),
                    advert: Advert::from_txt(|k| {
                        resolved.get_property_val_str(k).map(str::to_string)
                    }),
                    addrs: resolved
                        .get_addresses()
                        .iter()
                        .map(|a| a.to_ip_addr())
                        .collect(),
                    port: resolved.get_port(),
                };
                match judge(&me, &seen, &static_peers) {
                    Verdict::Candidate(addrs) => {
                        let offered = lock(&candidates).offer(&seen.instance, addrs.clone());
                        match offered {
                            Offered::New => {
                                tracing::info!(instance = %seen.instance, ?addrs, "LAN discovery: found a gate of this venue");
                                dialers.start(
                                    &seen.instance,
                                    dial_candidate(
                                        exchange.clone(),
                                        candidates.clone(),
                                        seen.instance.clone(),
                                    ),
                                );
                            }
                            Offered::Updated => {
                                tracing::debug!(instance = %seen.instance, ?addrs, "LAN discovery: addresses updated")
                            }
                            Offered::Full => {
                                tracing::warn!(instance = %seen.instance, "LAN discovery: too many advertised gates; ignored")
                            }
                        }
                    }
                    Verdict::Ours | Verdict::Static => {}
                    other => {
                        tracing::debug!(instance = %seen.instance, verdict = ?other, "LAN discovery: advertisement ignored")
                    }
                }
            }
            mdns_sd::ServiceEvent::ServiceRemoved(_, fullname) => {
                dialers.stop(&fullname);
                if lock(&candidates).remove(&fullname) {
                    tracing::info!(instance = %fullname, "LAN discovery: a gate stopped advertising");
                }
            }
            _ => {}
        }
    }
}

/// The dialers of the discovered gates, one per advertised name: a name
/// that goes (its advertisement removed) has its dialer aborted at once, so
/// an advertiser that comes and goes (a 1 s TTL, re-announced) never runs
/// more than one dialer per name. Dropped with discovery: all end.
#[derive(Default)]
struct Dialers {
    tasks: tokio::task::JoinSet<()>,
    by_name: HashMap<String, tokio::task::AbortHandle>,
}

impl Dialers {
    fn start(
        &mut self,
        name: &str,
        dialer: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let handle = self.tasks.spawn(dialer);
        if let Some(old) = self.by_name.insert(name.to_string(), handle) {
            old.abort();
        }
    }

    fn stop(&mut self, name: &str) {
        if let Some(handle) = self.by_name.remove(name) {
            handle.abort();
        }
    }

    /// Collects the dialers that ended.
    fn reap(&mut self) {
        while self.tasks.try_join_next().is_some() {}
    }

    #[cfg(test)]
    fn live(&self) -> usize {
        self.tasks.len()
    }
}

/// The mDNS daemon (its own thread), shut down when discovery ends.
struct Daemon(mdns_sd::ServiceDaemon);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.shutdown();
    }
}

/// The exchange as `config` says, with discovery beside it when `discover`
/// (see [`wanted`]); ends when the exchange ends, and dropping it stops
/// both. Discovery failing (no multicast here) is logged and leaves the
/// static peers.
pub async fn run_exchange(
    exchange: Arc<LanExchange>,
    store: Arc<Store>,
    config: LanConfig,
    discover: bool,
) -> Result<(), LanError> {
    let found = {
        let (exchange, peers) = (exchange.clone(), config.peers.clone());
        let port = config.listen.map(|a| a.port());
        async move {
            if let (true, Some(port)) = (discover, port) {
                if let Err(e) = run(exchange, store, port, peers).await {
                    tracing::warn!(error = %e, "LAN discovery stopped; static peers only");
                }
            }
            std::future::pending::<()>().await
        }
    };
    tokio::select! {
        done = exchange.run(config) => done,
        _ = found => Ok(()),
    }
}

/// Keeps one discovered gate supplied while it advertises: the same pinned
/// link and push as a static peer's, over its current addresses in turn.
async fn dial_candidate(
    exchange: Arc<LanExchange>,
    candidates: Arc<Mutex<Candidates>>,
    instance: String,
) {
    let mut wait = crate::lan::MIN_REDIAL;
    let mut warned = false;
    loop {
        let Some(addrs) = lock(&candidates).addrs(&instance) else {
            tracing::debug!(%instance, "LAN discovery: dialer stops (no longer advertised)");
            return;
        };
        for addr in addrs {
            let ended = exchange.dial_once(&addr.to_string()).await;
            match &ended {
                LanError::LinkEnded { peer, lasted, why } => {
                    tracing::info!(%addr, peer, ?lasted, error = %why, "LAN link ended");
                    warned = false;
                }
                LanError::AlreadyLinked(peer) => {
                    // Another advertisement (or a static peer) leads to the
                    // same gate, or this one is copied: one link is enough,
                    // and this path waits for it to end rather than paying
                    // a handshake every MAX_BACKOFF.
                    tracing::debug!(%instance, %addr, peer, "LAN discovery: that gate is already linked");
                    exchange.until_unlinked(*peer).await;
                }
                e if refused_handshake(e) => {
                    // A forged or stale advertisement: nothing but this.
                    if !warned {
                        tracing::warn!(%instance, %addr, error = %e, "LAN discovery: the advertised address failed the pinned handshake (not a listed gate of this venue); ignored");
                        warned = true;
                    }
                }
                e => {
                    tracing::debug!(%instance, %addr, error = %e, "LAN discovery: gate not reached");
                }
            }
            // After a link that was up, the minimum; else backing off (for
            // a gate already linked: that gate's own wait, with jitter).
            wait = match &ended {
                LanError::AlreadyLinked(peer) => exchange.redial_after_linked(*peer),
                _ => crate::lan::redial_wait(wait, &ended, MAX_BACKOFF),
            };
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const KEY_B: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

    fn me() -> Advert {
        Advert {
            device_id: 1,
            orq: 7,
            venue_id: 3,
            fingerprint: fingerprint(KEY_A),
        }
    }

    fn seen(advert: Option<Advert>, addrs: &[&str], port: u16) -> Seen {
        Seen {
            instance: "x._entrada-gate._tcp.local.".into(),
            advert,
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            port,
        }
    }

    fn other(device_id: i64, orq: i64, venue_id: i64) -> Advert {
        Advert {
            device_id,
            orq,
            venue_id,
            fingerprint: fingerprint(KEY_B),
        }
    }

    #[test]
    fn discovery_is_on_unless_turned_off_or_listening_on_loopback() {
        let lan: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        let veth: SocketAddr = "10.9.0.2:7000".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let lo6: SocketAddr = "[::1]:7000".parse().unwrap();
        let cases: &[(bool, Option<&str>, Option<SocketAddr>, bool)] = &[
            (false, None, Some(lan), true),
            (false, None, Some(veth), true),
            (false, Some("1"), Some(lan), true),
            (false, Some("yes"), Some(lan), true),
            (true, None, Some(lan), false),
            (false, Some("0"), Some(lan), false),
            (false, Some(" OFF "), Some(lan), false),
            (false, Some("false"), Some(lan), false),
            (false, Some("no"), Some(lan), false),
            (false, None, Some(lo), false),
            (false, None, Some(lo6), false),
            (false, None, None, false),
        ];
        for (flag, env, listen, want) in cases {
            assert_eq!(
                wanted(*flag, *env, *listen),
                *want,
                "{flag} {env:?} {listen:?}"
            );
        }
    }

    #[test]
    fn the_fingerprint_is_short_stable_and_tells_keys_apart() {
        let a = fingerprint(KEY_A);
        assert_eq!(a.len(), 16);
        assert_eq!(a, fingerprint(&KEY_A.to_ascii_uppercase()));
        assert_ne!(a, fingerprint(KEY_B));
        // Nothing of the key itself is advertised.
        assert!(!KEY_A.contains(&a));
    }

    #[test]
    fn the_txt_record_round_trips_and_malformed_ones_are_refused() {
        let advert = me();
        let txt: HashMap<&str, String> = advert.txt().into_iter().collect();
        assert_eq!(
            Advert::from_txt(|k| txt.get(k).cloned()),
            Some(advert.clone())
        );
        for (key, bad) in [
            ("device", Some("one")),
            ("org", None),
            ("venue", Some("")),
            ("key", Some("abc")),
            ("key", Some("zzzzzzzzzzzzzzzz")),
        ] {
            let mut t = txt.clone();
            match bad {
                Some(v) => {
                    t.insert(key, v.to_string());
                }
                None => {
                    t.remove(key);
                }
            }
            assert_eq!(Advert::from_txt(|k| t.get(k).cloned()), None, "{key}");
        }
        assert!(advert.instance().len() <= 63);
    }

    #[test]
    fn judge_keeps_only_other_gates_of_the_same_venue_with_a_dialable_address() {
        let statics: Vec<SocketAddr> = vec!["10.9.0.4:7000".parse().unwrap()];
        let cases: Vec<(Seen, Verdict)> = vec![
            (
                seen(Some(other(2, 7, 3)), &["10.9.0.3", "fe80::1"], 7000),
                Verdict::Candidate(vec!["10.9.0.3:7000".parse().unwrap()]),
            ),
            (
                seen(Some(other(2, 7, 3)), &["fd00::3", "10.9.0.3"], 7001),
                Verdict::Candidate(vec![
                    "10.9.0.3:7001".parse().unwrap(),
                    "[fd00::3]:7001".parse().unwrap(),
                ]),
            ),
            (seen(Some(me()), &["10.9.0.2"], 7000), Verdict::Ours),
            // Another device id that presents our own key fingerprint.
            (
                seen(
                    Some(Advert {
                        device_id: 9,
                        ..me()
                    }),
                    &["10.9.0.9"],
                    7000,
                ),
                Verdict::Ours,
            ),
            (
                seen(Some(other(2, 7, 4)), &["10.9.0.3"], 7000),
                Verdict::OtherVenue,
            ),
            (
                seen(Some(other(2, 8, 3)), &["10.9.0.3"], 7000),
                Verdict::OtherVenue,
            ),
            (seen(None, &["10.9.0.3"], 7000), Verdict::Malformed),
            (
                seen(Some(other(2, 7, 3)), &["fe80::1", "0.0.0.0"], 7000),
                Verdict::NoAddress,
            ),
            (
                seen(Some(other(2, 7, 3)), &["10.9.0.3"], 0),
                Verdict::NoAddress,
            ),
            (
                seen(Some(other(3, 7, 3)), &["10.9.0.4"], 7000),
                Verdict::Static,
            ),
        ];
        for (i, (s, want)) in cases.iter().enumerate() {
            assert_eq!(judge(&me(), s, &statics), *want, "case {i}");
        }
    }

    #[test]
    fn candidates_are_bounded_and_follow_their_advertisements() {
        let a: SocketAddr = "10.9.0.3:7000".parse().unwrap();
        let b: SocketAddr = "10.9.0.5:7000".parse().unwrap();
        let mut c = Candidates::default();
        assert_eq!(c.offer("g2", vec![a]), Offered::New);
        assert_eq!(c.offer("g2", vec![b]), Offered::Updated);
        assert_eq!(c.addrs("g2"), Some(vec![b]));
        assert!(c.remove("g2"));
        assert!(!c.remove("g2"));
        assert_eq!(c.addrs("g2"), None);
        for i in 0..MAX_CANDIDATES {
            assert_eq!(c.offer(&format!("g{i}"), vec![a]), Offered::New);
        }
        assert_eq!(c.offer("one-more", vec![a]), Offered::Full);
        assert_eq!(c.len(), MAX_CANDIDATES);
        // A known gate still updates when full.
        assert_eq!(c.offer("g0", vec![b]), Offered::Updated);
    }

    #[test]
    fn only_a_failed_handshake_counts_as_refused() {
        use std::io::{Error, ErrorKind};
        assert!(refused_handshake(&LanError::Io(Error::new(
            ErrorKind::InvalidData,
            "peer sent no certificates"
        ))));
        assert!(refused_handshake(&LanError::Peer("an unlisted key".into())));
        assert!(!refused_handshake(&LanError::Io(Error::new(
            ErrorKind::ConnectionRefused,
            "refused"
        ))));
        assert!(!refused_handshake(&LanError::Peer(
            "connect timed out".into()
        )));
    }

    /// An advertiser that comes and goes leaves one dialer per name, not
    /// one more each time.
    #[tokio::test]
    async fn a_name_advertised_again_after_its_removal_has_one_dialer() {
        let mut dialers = Dialers::default();
        for _ in 0..5 {
            dialers.start("gate-b", std::future::pending());
            dialers.stop("gate-b");
        }
        dialers.start("gate-b", std::future::pending());
        dialers.start("gate-c", std::future::pending());
        // The aborted ones end at their next poll.
        for _ in 0..10 {
            tokio::task::yield_now().await;
            dialers.reap();
        }
        assert_eq!(dialers.live(), 2);
        // Offered again while it runs (an address update is not a New, but
        // a replacement must not leak the older one either).
        dialers.start("gate-c", std::future::pending());
        for _ in 0..10 {
            tokio::task::yield_now().await;
            dialers.reap();
        }
        assert_eq!(dialers.live(), 2);
    }
}
