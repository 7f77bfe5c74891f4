//! Gate to gate (issue 14): the LAN exchange of a venue's gates.
//!
//! Each gate listens (`--lan-listen`) and dials its static peers
//! (`--peer`). The link is TLS 1.3 with raw public keys (RFC 7250, rustls):
//! each side proves the Ed25519 device key it registered with the server,
//! and a side accepts only a key in the peer list the server sent through
//! sync, so a gate of another venue or org, or anyone else, cannot even
//! connect. Over a link the dialer pushes its own signed outbox events, one
//! length-prefixed frame each, oldest first from where the peer confirmed
//! last (per-peer cursor in the replica: what a peer missed is sent on
//! reconnect); the listener checks each (`domain::sync::lan::check`),
//! applies it once (`Store::receive_peer_event`) and answers with a
//! [`LanAck`]. Events are relayed by nobody: the origin uploads its own.
//!
//! The protocol on a link (after the handshake): the dialer writes one frame
//! (a signed event), the listener writes one frame answering it (a
//! [`LanAck`]), and so on; the listener never writes anything unasked.
//! That rule lets a dialer with nothing to send read its link meanwhile:
//! whatever arrives then (a byte, EOF, a reset) means the link ended, and
//! the dialer relinks at once, not at its next event. An idle link carries
//! no frames (there is no ping): both sides set TCP keepalive on its socket
//! (probes after `KEEPALIVE_IDLE`, `KEEPALIVE_PROBES` every
//! `KEEPALIVE_INTERVAL`; on Linux also `TCP_USER_TIMEOUT` of the same bound
//! for a write left unanswered), and neither side closes a link for
//! silence, so a link lives as long as both gates and the path between
//! them do, with one handshake. A machine that vanished without closing is
//! noticed within about 11 s. A listener whose platform refused keepalive
//! on a socket falls back to closing that link after [`IDLE`] of silence
//! (the dialer then relinks). A frame, once begun, must end within
//! [`FRAME_TIMEOUT`].
//!
//! Bounds: a frame is at most `MAX_MESSAGE_BYTES` (checked before
//! allocating), at most [`MAX_INBOUND`] links at once, of which at most
//! [`MAX_HANDSHAKES_PER_IP`] still in their handshake per source address
//! (each given [`HANDSHAKE_TIMEOUT`]), and a link that sends more than
//! [`MAX_FRAMES_PER_SECOND`] or [`MAX_REFUSED`] refused events is dropped
//! (logged). Each event is
//! applied in its own short write, so a flood slows the link, not the scans.
//! A gate keeps at most one outbound link to each peer gate (a second dial
//! of a gate already linked ends after its handshake, and that path then
//! waits for the link to end) and holds at most
//! [`MAX_LINKS_PER_PEER`] inbound links from one (a newer one replaces the
//! oldest, so the idle links a gate may hold are bounded without closing
//! any for silence; a replaced link ends whatever step it is in, and an
//! answer the dialer does not take within [`FRAME_TIMEOUT`] ends its link).
//! Every link ends, in both directions, when a reload of the peer list
//! (each second) no longer lists its gate with the key it proved (a
//! revoked gate, a gate paired again); there is no TLS session resumption,
//! so each link proves its key against the list as it is then. A dialer
//! whose link was up and ended dials again
//! after [`MIN_REDIAL`]; failed dials back off to [`MAX_REDIAL`]
//! ([`redial_wait`]). A path that waited for a gate's link to end then
//! waits that gate's own redial wait (kept per gate, not per path) plus up
//! to [`MIN_REDIAL`] of jitter ([`LanExchange::redial_after_linked`]).

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use ed25519_dalek::SigningKey;
use entrada_domain::sync::lan::{self, LanAck, PeerKey, SignedEvent, MAX_MESSAGE_BYTES};
use entrada_store::{Received, Store};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{
    CertificateDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer, UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Inbound links at once (a venue has tens of gates).
pub const MAX_INBOUND: usize = 64;
/// Handshakes in progress from one source address at once: a flood of
/// connections from one machine cannot hold the inbound slots other gates
/// need (a listed gate makes one link to a peer at a time).
pub const MAX_HANDSHAKES_PER_IP: usize = 4;
/// Inbound links from one peer gate at once (it keeps one; a reconnect may
/// overlap half-dead links until TCP keepalive finds them dead): one more
/// replaces the oldest.
pub const MAX_LINKS_PER_PEER: usize = 3;
/// How long an inbound handshake may take (two round trips on a LAN).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the listener pauses after a failed accept before it tries again.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(200);
/// An inbound link whose socket refused TCP keepalive (a platform without
/// it) and that sends nothing for this long is closed; a link with
/// keepalive is never closed for silence.
pub const IDLE: Duration = Duration::from_secs(120);
/// How long a frame may take to arrive whole once its first byte did.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames per second one link may send; more drops the link.
pub const MAX_FRAMES_PER_SECOND: u32 = 2000;
/// Refused events one link may send before it is dropped.
pub const MAX_REFUSED: u32 = 20;
/// How often the gate looks for new outbox events (the admission may be
/// committed by another process: `entrada gate verify`); one look wakes
/// every dialer.
const POLL: Duration = Duration::from_millis(25);
/// Events read from the outbox per look.
const BATCH: u32 = 64;
/// How long a dialer whose path led to a gate already linked (another
/// address, an mDNS advertisement and a `--peer` of the same gate) waits
/// before it dials that path again, unless the link ends first: the path
/// costs one handshake per this period, not one every 2 s.
pub const REDUNDANT_RECHECK: Duration = Duration::from_secs(60);
/// TCP keepalive of an outbound link: a peer machine that vanished without
/// closing (power lost, cable pulled) is noticed within about
/// `KEEPALIVE_IDLE + KEEPALIVE_PROBES * KEEPALIVE_INTERVAL`, while the link
/// is idle; a peer process that ends closes its socket and is noticed at
/// once (the dialer reads while it waits).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_PROBES: u32 = 3;
/// The first wait before a dial, and the wait after a link that was up
/// (for at least [`STABLE_LINK`]) ended: the peer was there a moment ago.
pub const MIN_REDIAL: Duration = Duration::from_millis(100);
/// The longest wait between two failed dials of a static peer.
pub const MAX_REDIAL: Duration = Duration::from_secs(2);
/// A link that ends sooner than this after it came up backs off like a
/// failed dial: a peer that accepts and drops at once is not dialled in a
/// loop.
pub const STABLE_LINK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum LanError {
    #[error("this database is not paired (no device key): pair it with the server first")]
    NotPaired,
    #[error("LAN link: {0}")]
    Io(#[from] std::io::Error),
    #[error("LAN TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("LAN peer: {0}")]
    Peer(String),
    /// This gate already has a live link to that gate (one outbound link
    /// per peer gate, however many addresses or advertisements lead to it).
    #[error("LAN peer {0}: already linked")]
    AlreadyLinked(i64),
    /// The link to that gate was up (handshake done, claimed as its one
    /// outbound link) for `lasted`, then ended: `why`.
    #[error("LAN link to gate {peer} ended after {lasted:?}: {why}")]
    LinkEnded {
        peer: i64,
        lasted: Duration,
        why: Box<LanError>,
    },
    /// The replica's device key is not the one this exchange started with
    /// (the gate was paired again): the exchange ends so that its owner
    /// starts a new one with the new key.
    #[error("the device key changed (paired again): the LAN exchange must restart")]
    KeyChanged,
    #[error(transparent)]
    Store(#[from] entrada_store::StoreError),
}

/// What to listen on and whom to dial.
#[derive(Debug, Clone, Default)]
pub struct LanConfig {
    pub listen: Option<SocketAddr>,
    /// `HOST:PORT` of other gates.
    pub peers: Vec<String>,
}

/// A gate's LAN exchange.
pub struct LanExchange {
    store: Arc<Store>,
    /// The device public key (hex) this exchange presents.
    own_key: String,
    peers: Arc<RwLock<Vec<PeerKey>>>,
    links: Arc<Links>,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    /// The newest signed outbox event id, as the one poller last saw it.
    newest: tokio::sync::watch::Sender<Option<String>>,
    /// Bumped each time a reload changes the peer list: every link then
    /// checks that its gate is still listed with the key it proved, and
    /// ends if not (a revoked gate, a gate paired again).
    peers_changed: tokio::sync::watch::Sender<u64>,
    /// The address the exchange listens on while it does (for a status line).
    listening: std::sync::Mutex<Option<SocketAddr>>,
    /// Outbound TLS handshakes completed (each dial that reached a listed
    /// gate): what a redundant path costs, for tests and the log.
    handshakes: std::sync::atomic::AtomicU64,
    /// Events pushed over outbound links (frames written), for tests.
    pushed: std::sync::atomic::AtomicU64,
}

/// Clears [`LanExchange::listening`] when the listener goes (the exchange
/// ended or was dropped).
struct Listening(Arc<LanExchange>);

impl Drop for Listening {
    fn drop(&mut self) {
        *self.0.listening.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// The live links per peer gate. Outbound: at most one, claimed once the
/// handshake proved the peer (a second dial of a gate already linked, e.g.
/// through a copied mDNS advertisement, ends right after its handshake).
/// Inbound: at most [`MAX_LINKS_PER_PEER`] from one gate, so that one
/// listed gate (or a thief with its key) cannot hold the inbound slots the
/// venue's other gates need; one more replaces the oldest (a gate keeps one
/// live link, so the older ones are half-dead links of a reconnect that
/// must not lock it out until TCP keepalive finds them dead).
#[derive(Default)]
struct Links {
    outbound: std::sync::Mutex<std::collections::HashSet<i64>>,
    /// Rung when an outbound link ends: a dialer whose path led to a gate
    /// already linked waits for it before it dials again.
    released: tokio::sync::Notify,
    /// The redial wait per peer gate, kept by the link that ended (not per
    /// path: several paths to one gate share it).
    backoff: std::sync::Mutex<std::collections::HashMap<i64, Duration>>,
    inbound: std::sync::Mutex<InboundLinks>,
}

/// Inbound links by peer gate, oldest first, each with its "replaced" bell.
#[derive(Default)]
struct InboundLinks {
    by_peer:
        std::collections::HashMap<i64, std::collections::VecDeque<(u64, Arc<tokio::sync::Notify>)>>,
    next: u64,
}

/// An outbound link to a peer gate, released when dropped.
struct Outbound {
    links: Arc<Links>,
    peer: i64,
}

impl Drop for Outbound {
    fn drop(&mut self) {
        relock(&self.links.outbound).remove(&self.peer);
        self.links.released.notify_waiters();
    }
}

/// An inbound link from a peer gate, counted until dropped; told when a
/// newer link from the same gate replaces it.
struct Inbound {
    links: Arc<Links>,
    peer: i64,
    id: u64,
    replaced: Arc<tokio::sync::Notify>,
}

impl Drop for Inbound {
    fn drop(&mut self) {
        let mut inbound = relock(&self.links.inbound);
        if let Some(held) = inbound.by_peer.get_mut(&self.peer) {
            held.retain(|(id, _)| *id != self.id);
            if held.is_empty() {
                inbound.by_peer.remove(&self.peer);
            }
        }
    }
}

impl Links {
    /// The outbound link to `peer`, or None when one is already live.
    fn claim_outbound(self: &Arc<Self>, peer: i64) -> Option<Outbound> {
        relock(&self.outbound).insert(peer).then(|| Outbound {
            links: self.clone(),
            peer,
        })
    }

    /// The link to `peer` ended after `lasted`: its redial wait, for every
    /// path to it, is [`MIN_REDIAL`] after a link that was up for
    /// [`STABLE_LINK`] or more, else doubled up to [`MAX_REDIAL`]. Called
    /// before the link is released (the waiting paths then read it).
    fn link_ended(&self, peer: i64, lasted: Duration) {
        let mut backoff = relock(&self.backoff);
        let wait = backoff.entry(peer).or_insert(MIN_REDIAL);
        *wait = if lasted >= STABLE_LINK {
            MIN_REDIAL
        } else {
            (*wait * 2).clamp(MIN_REDIAL, MAX_REDIAL)
        };
    }

    /// The current redial wait of `peer` (see [`Self::link_ended`]).
    fn peer_wait(&self, peer: i64) -> Duration {
        relock(&self.backoff)
            .get(&peer)
            .copied()
            .unwrap_or(MIN_REDIAL)
    }

    /// Returns once `peer` has no outbound link, or after `at_most`.
    async fn until_unlinked(&self, peer: i64, at_most: Duration) {
        let wait = async {
            loop {
                // Registered before the check, so a release in between
                // is not missed.
                let released = self.released.notified();
                tokio::pin!(released);
                released.as_mut().enable();
                if !relock(&self.outbound).contains(&peer) {
                    return;
                }
                released.await;
            }
        };
        let _ = tokio::time::timeout(at_most, wait).await;
    }

    /// One more inbound link from `peer`; when it already has
    /// [`MAX_LINKS_PER_PEER`], its oldest is told to close (and is no
    /// longer counted).
    fn admit_inbound(self: &Arc<Self>, peer: i64) -> Inbound {
        let mut inbound = relock(&self.inbound);
        inbound.next += 1;
        let id = inbound.next;
        let replaced = Arc::new(tokio::sync::Notify::new());
        let held = inbound.by_peer.entry(peer).or_default();
        while held.len() >= MAX_LINKS_PER_PEER {
            if let Some((_, oldest)) = held.pop_front() {
                // A stored permit: the old link sees it even if it is not
                // waiting at this instant.
                oldest.notify_one();
            }
        }
        held.push_back((id, replaced.clone()));
        Inbound {
            links: self.clone(),
            peer,
            id,
            replaced,
        }
    }

    #[cfg(test)]
    fn inbound_from(&self, peer: i64) -> usize {
        relock(&self.inbound)
            .by_peer
            .get(&peer)
            .map_or(0, |h| h.len())
    }
}

fn relock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The SubjectPublicKeyInfo of an Ed25519 key (RFC 8410): the raw public
/// key a TLS side presents.
fn spki(public: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    out.extend_from_slice(public);
    out
}

/// The PKCS#8 (v1) form of an Ed25519 seed (RFC 8410), for rustls.
fn pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    out.extend_from_slice(seed);
    out
}

/// The wait before a path is dialled again after its dial ended with
/// `ended`, the previous wait being `last`: [`MIN_REDIAL`] after a link
/// that was up for [`STABLE_LINK`] or more (its peer was there: a restart,
/// a replaced link), or after a redundant path waited for the gate's link
/// to end ([`LanError::AlreadyLinked`]); otherwise doubled, up to `max`.
pub fn redial_wait(last: Duration, ended: &LanError, max: Duration) -> Duration {
    match ended {
        LanError::LinkEnded { lasted, .. } if *lasted >= STABLE_LINK => MIN_REDIAL,
        LanError::AlreadyLinked(_) => MIN_REDIAL,
        _ => (last * 2).min(max).max(MIN_REDIAL),
    }
}

/// A random wait of at most `max` (a clock-derived one if the system gives
/// no randomness).
fn jitter(max: Duration) -> Duration {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        bytes = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            .to_le_bytes();
    }
    max.mul_f64(f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX))
}

/// Sets TCP keepalive on a link's socket (and, on Linux, a
/// `TCP_USER_TIMEOUT` of the same bound, for a write the peer never
/// acknowledges), best effort: a platform that refuses still links, with a
/// warning. Whether keepalive is on.
fn keep_alive(tcp: &TcpStream, addr: &dyn std::fmt::Display) -> bool {
    let socket = socket2::SockRef::from(tcp);
    let set = socket.set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL)
            .with_retries(KEEPALIVE_PROBES),
    );
    if let Err(e) = &set {
        tracing::warn!(%addr, error = %e, "LAN link without TCP keepalive: a vanished peer is noticed late");
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) =
        socket.set_tcp_user_timeout(Some(KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_PROBES))
    {
        tracing::debug!(%addr, error = %e, "LAN link without TCP_USER_TIMEOUT");
    }
    set.is_ok()
}

/// The next frame of an inbound link, or None when the link ended between
/// frames (closed by the dialer; on a socket without keepalive, `watched`
/// false, also silent for [`IDLE`]). Silence between frames is otherwise
/// no reason to close; a frame once begun must end within
/// [`FRAME_TIMEOUT`].
async fn next_frame<S: AsyncRead + Unpin>(
    link: &mut S,
    watched: bool,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut first = [0u8; 1];
    let n = if watched {
        link.read(&mut first).await?
    } else {
        match tokio::time::timeout(IDLE, link.read(&mut first)).await {
            Ok(n) => n?,
            Err(_) => return Ok(None),
        }
    };
    if n == 0 {
        return Ok(None);
    }
    let mut frame = (&first[..]).chain(link);
    match tokio::time::timeout(FRAME_TIMEOUT, read_frame(&mut frame)).await {
        Ok(read) => read.map(Some),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("a frame not finished within {FRAME_TIMEOUT:?}"),
        )),
    }
}

/// Pins the link to the synced peer list: both directions.
#[derive(Debug)]
struct PeerVerifier {
    peers: Arc<RwLock<Vec<PeerKey>>>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl PeerVerifier {
    fn listed(&self, presented: &[u8]) -> Option<i64> {
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner());
        only_holder(&peers, presented)
    }

    fn check(&self, presented: &[u8]) -> Result<(), rustls::Error> {
        match self.listed(presented) {
            Some(_) => Ok(()),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(cert.as_ref()),
            dss,
            &self.algorithms,
        )
    }
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity.as_ref())
            .map(|_| ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

impl ClientCertVerifier for PeerVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity.as_ref())
            .map(|_| ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

/// Inbound handshakes in progress, per source address.
#[derive(Default)]
struct Handshakes(std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

/// One handshake counted against its source address until dropped.
struct Handshake {
    of: Arc<Handshakes>,
    ip: std::net::IpAddr,
}

impl Handshakes {
    /// Counts a handshake from `ip`, or None when it already has
    /// [`MAX_HANDSHAKES_PER_IP`] in progress. The map holds only addresses
    /// with a handshake in progress (each also holds an inbound slot), so
    /// it has at most [`MAX_INBOUND`] entries.
    fn start(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<Handshake> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= MAX_HANDSHAKES_PER_IP {
            return None;
        }
        *n += 1;
        Some(Handshake {
            of: self.clone(),
            ip,
        })
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        let mut map = self.of.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// The device a link's other side proved to be (by its raw public key),
/// and that key (its SPKI).
fn peer_of(
    certs: Option<&[CertificateDer<'_>]>,
    peers: &RwLock<Vec<PeerKey>>,
) -> Option<(i64, Vec<u8>)> {
    let presented = certs?.first()?.as_ref().to_vec();
    let peers = peers.read().unwrap_or_else(|p| p.into_inner());
    only_holder(&peers, &presented).map(|id| (id, presented))
}

/// The one listed peer whose key is `presented` (an SPKI). A key listed for
/// two devices (the server refuses that since 14h; an older server did
/// not) names nobody: a link is never attributed to the wrong gate.
fn only_holder(peers: &[PeerKey], presented: &[u8]) -> Option<i64> {
    let mut holders = peers.iter().filter_map(|p| {
        let key = lan::parse_public_key(&p.public_key)?;
        (spki(key.as_bytes()) == presented).then_some(p.device_id)
    });
    match (holders.next(), holders.next()) {
        (Some(id), None) => Some(id),
        _ => None,
    }
}

/// Writes one frame: a 4-byte big-endian length, then the bytes.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    w.write_all(bytes).await?;
    w.flush().await
}

/// Reads one frame, refusing one longer than `MAX_MESSAGE_BYTES` before
/// reading (or allocating for) its body.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes, more than {MAX_MESSAGE_BYTES}"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(body)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, entrada_store::StoreError> + Send + 'static,
) -> Result<T, LanError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LanError::Peer(e.to_string()))?
        .map_err(LanError::from)
}

impl LanExchange {
    /// The exchange of a paired gate: its own key, its synced peers.
    pub fn new(store: Arc<Store>) -> Result<Self, LanError> {
        let key: SigningKey = store.device_signing_key()?.ok_or(LanError::NotPaired)?;
        // From the key itself: a pairing between two reads cannot leave the
        // exchange presenting one key while it watches for another.
        let own_key = lan::public_key_hex(&key);
        let peers = Arc::new(RwLock::new(store.peer_keys()?));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signer = rustls::crypto::ring::sign::any_eddsa_type(&PrivatePkcs8KeyDer::from(pkcs8(
            &key.to_bytes(),
        )))?;
        let certified = Arc::new(rustls::sign::CertifiedKey::new(
            vec![CertificateDer::from(spki(key.verifying_key().as_bytes()))],
            signer,
        ));
        let verifier = Arc::new(PeerVerifier {
            peers: peers.clone(),
            algorithms: provider.signature_verification_algorithms,
        });
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier.clone())
            .with_cert_resolver(Arc::new(
                rustls::server::AlwaysResolvesServerRawPublicKeys::new(certified.clone()),
            ));
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(Arc::new(
                rustls::client::AlwaysResolvesClientRawPublicKeys::new(certified),
            ));
        // No session resumption: a resumed TLS 1.3 session skips the
        // certificate check, so every link proves its key against the peer
        // list as it is now (a revoked gate cannot resume its way back).
        let mut server = server;
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server.send_tls13_tickets = 0;
        let mut client = client;
        client.resumption = rustls::client::Resumption::disabled();
        Ok(Self {
            newest: tokio::sync::watch::Sender::new(None),
            peers_changed: tokio::sync::watch::Sender::new(0),
            listening: std::sync::Mutex::new(None),
            handshakes: std::sync::atomic::AtomicU64::new(0),
            pushed: std::sync::atomic::AtomicU64::new(0),
            store,
            own_key,
            peers,
            links: Arc::default(),
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    /// The address the exchange is listening on now (None: not yet, not
    /// asked to, or no longer).
    pub fn listening(&self) -> Option<SocketAddr> {
        *self.listening.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Outbound handshakes completed since the exchange started.
    pub fn handshakes(&self) -> u64 {
        self.handshakes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Events pushed over outbound links since the exchange started.
    pub fn pushed(&self) -> u64 {
        self.pushed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits while this gate has an outbound link to `peer` (at most
    /// [`REDUNDANT_RECHECK`]): what a dialer does after
    /// [`LanError::AlreadyLinked`], instead of a handshake every 2 s.
    pub async fn until_unlinked(&self, peer: i64) {
        self.links.until_unlinked(peer, REDUNDANT_RECHECK).await;
    }

    /// How long a path that found `peer` already linked waits, once that
    /// link ended ([`Self::until_unlinked`]), before it dials again: the
    /// peer's own redial wait (kept per gate, not per path, so several
    /// paths do not reset it to [`MIN_REDIAL`]) plus up to [`MIN_REDIAL`]
    /// of jitter (the release wakes every waiting path at once).
    pub fn redial_after_linked(&self, peer: i64) -> Duration {
        self.links.peer_wait(peer) + jitter(MIN_REDIAL)
    }

    /// Reloads the peer list the sync rounds keep in the replica;
    /// [`LanError::KeyChanged`] when the gate was paired again since this
    /// exchange started (its links would present a key the peers no longer
    /// list).
    pub fn reload_peers(&self) -> Result<(), LanError> {
        if self.store.stored_device_public_key()?.as_deref() != Some(self.own_key.as_str()) {
            return Err(LanError::KeyChanged);
        }
        let fresh = self.store.peer_keys()?;
        let changed = {
            let mut peers = self.peers.write().unwrap_or_else(|p| p.into_inner());
            let changed = *peers != fresh;
            *peers = fresh;
            changed
        };
        if changed {
            // Links check that their gate is still listed (a revoked gate's
            // links end at once, not at their next handshake).
            self.peers_changed.send_modify(|g| *g += 1);
        }
        Ok(())
    }

    /// Whether `peer` is still listed with the key `key` (an SPKI) it
    /// proved when its link was made.
    fn still_listed(&self, peer: i64, key: &[u8]) -> bool {
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner());
        only_holder(&peers, key) == Some(peer)
    }

    /// Returns once a reload of the peer list (after `changes` was
    /// subscribed, i.e. before the link's handshake) no longer lists `peer`
    /// with `key`: the link must end.
    async fn unlisted(
        &self,
        changes: &mut tokio::sync::watch::Receiver<u64>,
        peer: i64,
        key: &[u8],
    ) {
        loop {
            if changes.changed().await.is_err() {
                return std::future::pending().await;
            }
            if !self.still_listed(peer, key) {
                return;
            }
        }
    }

    /// Runs the exchange until an unrecoverable error (a port that cannot
    /// be bound): the listener, one dialer per static peer, and the peer
    /// list reloaded every second.
    pub async fn run(self: Arc<Self>, config: LanConfig) -> Result<(), LanError> {
        let mut tasks = tokio::task::JoinSet::new();
        {
            let me = self.clone();
            tasks.spawn(async move {
                loop {
                    let me2 = me.clone();
                    match tokio::task::spawn_blocking(move || me2.reload_peers())
                        .await
                        .map_err(|e| LanError::Peer(e.to_string()))
                        .and_then(|r| r)
                    {
                        Ok(()) => {}
                        Err(LanError::KeyChanged) => {
                            tracing::info!("device key changed (paired again): LAN exchange ends to restart with the new key");
                            return Err(LanError::KeyChanged);
                        }
                        Err(e) => tracing::warn!(error = %e, "LAN peer list not reloaded"),
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
        {
            // One look at the outbox for every dialer.
            let me = self.clone();
            tasks.spawn(async move {
                loop {
                    let store = me.store.clone();
                    match blocking(move || store.newest_signed_event()).await {
                        Ok(newest) => {
                            me.newest.send_if_modified(|seen| {
                                let changed = *seen != newest;
                                *seen = newest;
                                changed
                            });
                        }
                        Err(e) => tracing::warn!(error = %e, "outbox not read"),
                    }
                    tokio::time::sleep(POLL).await;
                }
            });
        }
        if let Some(addr) = config.listen {
            let listener = TcpListener::bind(addr).await?;
            tracing::info!(%addr, "LAN exchange listening");
            *self.listening.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(listener.local_addr().unwrap_or(addr));
            let me = self.clone();
            let bound = Listening(self.clone());
            tasks.spawn(async move {
                let _bound = bound;
                me.listen(listener).await
            });
        }
        for addr in config.peers {
            let me = self.clone();
            tasks.spawn(async move { me.dial_forever(addr).await });
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok(Err(e)) = done {
                // The rest ended and waited for: the listener's socket is
                // closed before the caller binds the port again (a restart
                // with a new key).
                tasks.shutdown().await;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Accepts links, at most [`MAX_INBOUND`] at once; a failed accept is
    /// logged and retried after [`ACCEPT_PAUSE`].
    pub async fn listen(self: Arc<Self>, listener: TcpListener) -> Result<(), LanError> {
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_INBOUND));
        let handshaking = Arc::new(Handshakes::default());
        let acceptor = tokio_rustls::TlsAcceptor::from(self.server.clone());
        loop {
            // One failed accept (out of file descriptors, a connection
            // reset before it was taken) must not end the exchange: log,
            // pause briefly, keep listening.
            let (tcp, from) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "LAN accept failed; listening again shortly");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            };
            let Some(handshake) = handshaking.start(from.ip()) else {
                tracing::warn!(%from, "LAN link refused: too many handshakes from this address");
                continue;
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::warn!(%from, "LAN link refused: too many links");
                continue;
            };
            let me = self.clone();
            let acceptor = acceptor.clone();
            // Before the handshake checks the list: a reload after it is seen.
            let changes = self.peers_changed.subscribe();
            let _ = tcp.set_nodelay(true);
            let watched = keep_alive(&tcp, &from);
            tokio::spawn(async move {
                let _slot = slot;
                let accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                drop(handshake);
                match accepted {
                    Ok(Ok(tls)) => {
                        if let Err(e) = me.receive(tls, from, watched, changes).await {
                            tracing::info!(%from, error = %e, "LAN link closed");
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(%from, error = %e, "LAN link refused (not a listed gate of this venue?)")
                    }
                    Err(_) => tracing::warn!(%from, "LAN handshake timed out"),
                }
            });
        }
    }

    /// One inbound link: frames in, acks out (nothing else: see the
    /// module's protocol). `watched`: its socket has TCP keepalive, so
    /// silence does not close it.
    /// The link ends whatever step it is in (reading, applying, answering)
    /// when a newer link from the same gate replaces it, or when a reload
    /// of the peer list no longer lists that gate with the key it proved.
    async fn receive(
        &self,
        mut tls: tokio_rustls::server::TlsStream<TcpStream>,
        from: SocketAddr,
        watched: bool,
        mut changes: tokio::sync::watch::Receiver<u64>,
    ) -> Result<(), LanError> {
        let (peer, key) = peer_of(tls.get_ref().1.peer_certificates(), &self.peers)
            .ok_or_else(|| LanError::Peer("an unlisted key".into()))?;
        let link = self.links.admit_inbound(peer);
        tokio::select! {
            done = self.receive_frames(&mut tls, from, watched, peer) => done,
            _ = link.replaced.notified() => {
                tracing::info!(%from, peer, "LAN link closed: replaced by a newer link from the same gate ({MAX_LINKS_PER_PEER} at most)");
                Ok(())
            }
            _ = self.unlisted(&mut changes, peer, &key) => {
                tracing::info!(%from, peer, "LAN link closed: that gate is no longer a listed peer (revoked, or its key changed)");
                Ok(())
            }
        }
    }

    /// Frames in, acks out, until the link ends.
    async fn receive_frames(
        &self,
        tls: &mut tokio_rustls::server::TlsStream<TcpStream>,
        from: SocketAddr,
        watched: bool,
        peer: i64,
    ) -> Result<(), LanError> {
        let (mut refused, mut window, mut in_window) = (0u32, tokio::time::Instant::now(), 0u32);
        loop {
            let read = next_frame(tls, watched).await;
            let frame = match read {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => {
                    tracing::warn!(%from, peer, error = %e, "LAN frame refused; link dropped");
                    return Err(e.into());
                }
            };
            if window.elapsed() >= Duration::from_secs(1) {
                (window, in_window) = (tokio::time::Instant::now(), 0);
            }
            in_window += 1;
            if in_window > MAX_FRAMES_PER_SECOND {
                tracing::warn!(%from, peer, "LAN flood: link dropped");
                return Err(LanError::Peer("flood".into()));
            }
            let (ack, signed) = match lan::parse_message(&frame) {
                Err(r) => (None, Err(r)),
                Ok(signed) if signed.origin_device_id != peer => (
                    Some(signed.event.event_id),
                    Err(lan::LanRefusal::UnknownSender),
                ),
                Ok(signed) => (Some(signed.event.event_id), Ok(signed)),
            };
            let outcome = match signed {
                Err(r) => Received::Refused(r),
                Ok(signed) => {
                    let store = self.store.clone();
                    blocking(move || store.receive_peer_event(&signed, Utc::now())).await?
                }
            };
            let answer = match &outcome {
                Received::Applied => ("applied", None),
                Received::Duplicate => {
                    tracing::info!(%from, peer, event = ?ack, "LAN replay ignored");
                    ("duplicate", None)
                }
                Received::Ignored => {
                    tracing::debug!(%from, peer, event = ?ack, "LAN event not kept (kind or age)");
                    ("ignored", None)
                }
                Received::Refused(r) => {
                    tracing::warn!(%from, peer, event = ?ack, code = r.code(), "LAN event refused");
                    refused += 1;
                    ("refused", Some(r.code().to_string()))
                }
            };
            let Some(event_id) = ack else {
                return Err(LanError::Peer("a frame that is not a signed event".into()));
            };
            let body = serde_json::to_vec(&LanAck {
                event_id,
                outcome: answer.0.into(),
                code: answer.1,
            })
            .unwrap_or_default();
            // A peer that does not read its answers cannot hold the link
            // (and its inbound slot) in this write.
            tokio::time::timeout(FRAME_TIMEOUT, write_frame(tls, &body))
                .await
                .map_err(|_| {
                    LanError::Peer(format!("answer not taken within {FRAME_TIMEOUT:?}"))
                })??;
            if refused > MAX_REFUSED {
                tracing::warn!(%from, peer, "LAN link dropped after {refused} refused events");
                return Err(LanError::Peer("too many refused events".into()));
            }
        }
    }

    /// Keeps one static peer supplied: connect, push, reconnect after a
    /// failure (backing off up to [`MAX_REDIAL`]; after a link that was up,
    /// at once: [`redial_wait`]). A path to a gate already linked (through
    /// another address or discovery) waits for that link to end.
    pub async fn dial_forever(self: Arc<Self>, addr: String) -> Result<(), LanError> {
        let mut wait = MIN_REDIAL;
        loop {
            let ended = self.dial_once(&addr).await;
            match &ended {
                LanError::AlreadyLinked(peer) => {
                    tracing::debug!(%addr, peer, "LAN peer already linked by another path; waiting for that link to end");
                    self.until_unlinked(*peer).await;
                }
                LanError::LinkEnded { peer, lasted, why } => {
                    tracing::info!(%addr, peer, ?lasted, error = %why, "LAN link ended")
                }
                e => tracing::debug!(%addr, error = %e, "LAN peer not reached"),
            }
            wait = match &ended {
                LanError::AlreadyLinked(peer) => self.redial_after_linked(*peer),
                _ => redial_wait(wait, &ended, MAX_REDIAL),
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// A link to the gate at `addr`, authenticated both ways: the stream
    /// and the listed peer it proved to be.
    pub async fn connect(
        &self,
        addr: &str,
    ) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, i64), LanError> {
        self.connect_keyed(addr)
            .await
            .map(|(tls, peer, _)| (tls, peer))
    }

    /// [`Self::connect`], with the key (SPKI) the peer proved.
    async fn connect_keyed(
        &self,
        addr: &str,
    ) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, i64, Vec<u8>), LanError> {
        let tcp = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
            .await
            .map_err(|_| LanError::Peer("connect timed out".into()))??;
        tcp.set_nodelay(true)?;
        keep_alive(&tcp, &addr);
        let connector = tokio_rustls::TlsConnector::from(self.client.clone());
        let name =
            ServerName::try_from("entrada-gate").map_err(|e| LanError::Peer(e.to_string()))?;
        let tls = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
            .await
            .map_err(|_| LanError::Peer("handshake timed out".into()))??;
        self.handshakes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (peer, key) = peer_of(tls.get_ref().1.peer_certificates(), &self.peers)
            .ok_or_else(|| LanError::Peer("an unlisted key".into()))?;
        Ok((tls, peer, key))
    }

    /// One dial of the gate at `addr` (a static peer or one discovery
    /// found), and how it ended: it never ends well. Before the link was
    /// up, the error that stopped it ([`LanError::AlreadyLinked`] for a
    /// gate this gate already has a link to); once it was,
    /// [`LanError::LinkEnded`], after pushing until the link failed.
    pub async fn dial_once(&self, addr: &str) -> LanError {
        // Before the handshake checks the list: a reload after it is seen.
        let mut changes = self.peers_changed.subscribe();
        let (mut tls, peer, key) = match self.connect_keyed(addr).await {
            Ok(linked) => linked,
            Err(e) => return e,
        };
        let Some(_link) = self.links.claim_outbound(peer) else {
            return LanError::AlreadyLinked(peer);
        };
        let up = tokio::time::Instant::now();
        // A gate no longer listed (revoked, its key changed) loses its link
        // whatever the push is doing.
        let why = tokio::select! {
            pushed = self.push(&mut tls, addr, peer) => {
                let Err(why) = pushed;
                why
            }
            _ = self.unlisted(&mut changes, peer, &key) => LanError::Peer(
                "that gate is no longer a listed peer (revoked, or its key changed)".into(),
            ),
        };
        if matches!(why, LanError::Store(entrada_store::StoreError::NotAPeer(_))) {
            // The replica no longer lists this gate, but the list the TLS
            // verifier reads does until its next reload (every second):
            // reload it now, so the redial is refused at its handshake
            // instead of making a link that ends the same way. A short
            // read of the replica, and only when a gate was dropped.
            if let Err(e) = self.reload_peers() {
                tracing::debug!(error = %e, "LAN peer list not reloaded");
            }
        }
        // Before `_link` is released: the paths it wakes read this wait.
        self.links.link_ended(peer, up.elapsed());
        LanError::LinkEnded {
            peer,
            lasted: up.elapsed(),
            why: Box::new(why),
        }
    }

    /// Pushes this gate's events over a link to `peer` until it fails.
    async fn push(
        &self,
        tls: &mut tokio_rustls::client::TlsStream<TcpStream>,
        addr: &str,
        peer: i64,
    ) -> Result<std::convert::Infallible, LanError> {
        {
            let store = self.store.clone();
            blocking(move || store.peer_seen(peer, Utc::now())).await?;
        }
        tracing::info!(%addr, peer, "LAN link up");
        let mut newest = self.newest.subscribe();
        let mut seen = tokio::time::Instant::now();
        loop {
            newest.borrow_and_update();
            if seen.elapsed() >= Duration::from_secs(10) {
                // The sync screen's "reachable": a live link is a peer seen.
                seen = tokio::time::Instant::now();
                let store = self.store.clone();
                blocking(move || store.peer_seen(peer, Utc::now())).await?;
            }
            let store = self.store.clone();
            let events: Vec<SignedEvent> =
                blocking(move || store.events_for_peer(peer, BATCH)).await?;
            if events.is_empty() {
                // Woken by the outbox poller; a second at most, so a peer
                // also gets what a poller that is not running would miss.
                // Meanwhile the link is read: the listener writes only
                // answers (the module's protocol), so whatever arrives now
                // is the link ending (the peer closed or its process died:
                // EOF or a reset), and the dialer reconnects at once
                // instead of at its next event. Nothing is written while
                // idle: TCP keepalive keeps the link (and finds a vanished
                // machine).
                // (A read that loses the race is dropped before it took
                // anything: rustls keeps partial records in the stream.)
                let mut probe = [0u8; 1];
                tokio::select! {
                    _ = tokio::time::timeout(Duration::from_secs(1), newest.changed()) => {}
                    read = tls.read(&mut probe) => {
                        let why = match read {
                            Ok(0) => "closed by the peer".to_string(),
                            Ok(_) => "the peer sent something unasked".to_string(),
                            Err(e) => e.to_string(),
                        };
                        tracing::debug!(%addr, peer, why, "LAN link ended; reconnecting");
                        return Err(LanError::Peer(format!("link ended: {why}")));
                    }
                }
                continue;
            }
            for event in events {
                let id = event.event.event_id;
                write_frame(tls, &serde_json::to_vec(&event).unwrap_or_default()).await?;
                self.pushed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let ack = tokio::time::timeout(Duration::from_secs(5), read_frame(tls))
                    .await
                    .map_err(|_| LanError::Peer("no answer".into()))??;
                let ack: LanAck =
                    serde_json::from_slice(&ack).map_err(|e| LanError::Peer(e.to_string()))?;
                if ack.event_id != id {
                    return Err(LanError::Peer("an answer for another event".into()));
                }
                if ack.outcome == "refused" {
                    tracing::warn!(%addr, peer, event = %id, code = ?ack.code, "peer refused our event");
                }
                let store = self.store.clone();
                blocking(move || store.peer_confirmed(peer, id, 1, Utc::now())).await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(device_id: i64, seed: u8) -> PeerKey {
        PeerKey {
            device_id,
            name: format!("Gate {device_id}"),
            public_key: lan::public_key_hex(&SigningKey::from_bytes(&[seed; 32])),
        }
    }

    fn presented(seed: u8) -> Vec<u8> {
        spki(
            SigningKey::from_bytes(&[seed; 32])
                .verifying_key()
                .as_bytes(),
        )
    }

    #[test]
    fn a_key_listed_for_two_gates_names_neither() {
        let peers = [peer(2, 1), peer(3, 2)];
        assert_eq!(only_holder(&peers, &presented(1)), Some(2));
        assert_eq!(only_holder(&peers, &presented(2)), Some(3));
        assert_eq!(only_holder(&peers, &presented(9)), None);
        // Gate 4 registered gate 2's key (an older server allowed it): the
        // key is ambiguous, so neither gets the link.
        let taken = [peer(2, 1), peer(3, 2), peer(4, 1)];
        assert_eq!(only_holder(&taken, &presented(1)), None);
        assert_eq!(only_holder(&taken, &presented(2)), Some(3));
    }

    #[test]
    fn one_address_holds_at_most_its_share_of_handshakes() {
        let hs = Arc::new(Handshakes::default());
        let flood: std::net::IpAddr = "10.0.0.9".parse().unwrap();
        let gate: std::net::IpAddr = "10.0.0.2".parse().unwrap();
        let held: Vec<_> = (0..MAX_HANDSHAKES_PER_IP)
            .map(|_| hs.start(flood).unwrap())
            .collect();
        assert!(hs.start(flood).is_none(), "a 5th from the same address");
        assert!(hs.start(gate).is_some(), "another address still gets in");
        drop(held);
        assert!(hs.start(flood).is_some(), "counted down when they end");
        assert!(
            hs.0.lock().unwrap().is_empty(),
            "an address with none in progress is forgotten"
        );
    }

    /// The listener's reading rule: silence between frames never closes a
    /// link with keepalive (no re-handshake every [`IDLE`]); without
    /// keepalive it ends after [`IDLE`]; a begun frame must end within
    /// [`FRAME_TIMEOUT`]; EOF between frames is a quiet end. (Paused
    /// time: the clock jumps while every task waits.)
    #[tokio::test(start_paused = true)]
    async fn an_inbound_link_is_closed_for_silence_only_without_keepalive() {
        let (mut dialer, mut listener) = tokio::io::duplex(1024);
        let reading = tokio::spawn(async move {
            let frame = next_frame(&mut listener, true).await;
            (frame, listener)
        });
        tokio::time::sleep(IDLE * 10).await;
        assert!(!reading.is_finished(), "a watched link is silent, not over");
        write_frame(&mut dialer, b"{}").await.unwrap();
        let (frame, mut listener) = reading.await.unwrap();
        assert_eq!(frame.unwrap(), Some(b"{}".to_vec()));

        let start = tokio::time::Instant::now();
        assert_eq!(next_frame(&mut listener, false).await.unwrap(), None);
        assert!(start.elapsed() >= IDLE, "unwatched: closed after IDLE");

        dialer.write_all(&[0, 0]).await.unwrap();
        let start = tokio::time::Instant::now();
        let begun = next_frame(&mut listener, true).await.unwrap_err();
        assert_eq!(begun.kind(), std::io::ErrorKind::TimedOut, "{begun}");
        assert!(start.elapsed() >= FRAME_TIMEOUT);

        drop(dialer);
        assert_eq!(next_frame(&mut listener, true).await.unwrap(), None, "EOF");
    }

    /// After a link that was up (a peer restarted, replaced the link), the
    /// next dial comes after the minimum wait, whatever the back-off was;
    /// failed dials, and a link that ended at once, back off.
    #[test]
    fn the_redial_wait_resets_after_a_link_that_was_up() {
        let ended = |lasted| LanError::LinkEnded {
            peer: 7,
            lasted,
            why: Box::new(LanError::Peer("link ended: closed by the peer".into())),
        };
        let refused = || LanError::Peer("connect timed out".into());
        let mut wait = MIN_REDIAL;
        for _ in 0..10 {
            wait = redial_wait(wait, &refused(), MAX_REDIAL);
        }
        assert_eq!(wait, MAX_REDIAL, "failed dials back off to the cap");
        assert_eq!(
            redial_wait(wait, &ended(Duration::from_secs(600)), MAX_REDIAL),
            MIN_REDIAL,
            "a link that was up ended: dial again at once"
        );
        assert_eq!(
            redial_wait(
                Duration::from_millis(400),
                &ended(Duration::from_millis(30)),
                MAX_REDIAL
            ),
            Duration::from_millis(800),
            "a link dropped right after its handshake backs off"
        );
        assert_eq!(
            redial_wait(MAX_REDIAL, &LanError::AlreadyLinked(7), MAX_REDIAL),
            MIN_REDIAL
        );
        assert_eq!(
            redial_wait(MIN_REDIAL, &refused(), MAX_REDIAL),
            2 * MIN_REDIAL
        );
    }

    /// Several paths to one gate share its redial wait: a link that ended
    /// at once doubles it for all of them (a path that waited for the link
    /// does not reset it to the minimum), a link that was up resets it;
    /// each path adds a little jitter so a release does not start them
    /// all in the same instant.
    #[test]
    fn the_redial_wait_after_a_linked_gate_is_kept_per_gate_with_jitter() {
        let links = Arc::new(Links::default());
        assert_eq!(links.peer_wait(7), MIN_REDIAL);
        links.link_ended(7, Duration::from_millis(30));
        links.link_ended(7, Duration::from_millis(30));
        assert_eq!(links.peer_wait(7), 4 * MIN_REDIAL, "short links back off");
        for _ in 0..10 {
            links.link_ended(7, Duration::ZERO);
        }
        assert_eq!(links.peer_wait(7), MAX_REDIAL, "up to the cap");
        assert_eq!(links.peer_wait(8), MIN_REDIAL, "another gate's own");
        links.link_ended(7, STABLE_LINK);
        assert_eq!(links.peer_wait(7), MIN_REDIAL, "a link that was up");
        let waits: Vec<Duration> = (0..20).map(|_| jitter(MIN_REDIAL)).collect();
        assert!(waits.iter().all(|w| *w <= MIN_REDIAL));
        assert!(
            waits.iter().any(|w| *w != waits[0]),
            "not all the same: {waits:?}"
        );
    }

    #[test]
    fn one_outbound_link_per_peer_gate_until_it_ends() {
        let links = Arc::new(Links::default());
        let first = links.claim_outbound(7).expect("the first link to gate 7");
        assert!(
            links.claim_outbound(7).is_none(),
            "a second dial of gate 7 (another address, a copied advertisement)"
        );
        assert!(
            links.claim_outbound(8).is_some(),
            "another gate is not held up"
        );
        drop(first);
        assert!(
            links.claim_outbound(7).is_some(),
            "gate 7 can be linked again once its link ended"
        );
    }

    /// A dialer whose path led to a gate already linked waits while that
    /// link lives (no handshake every 2 s), goes on once it ends, and in
    /// any case after its recheck period.
    #[test]
    fn a_redundant_dialer_waits_for_the_link_to_end() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let links = Arc::new(Links::default());
            let held = links.claim_outbound(7).unwrap();
            let long = Duration::from_secs(30);
            let waiting =
                tokio::time::timeout(Duration::from_millis(300), links.until_unlinked(7, long));
            assert!(waiting.await.is_err(), "gate 7 is linked: it waits");
            let start = tokio::time::Instant::now();
            let waiter = tokio::spawn({
                let links = links.clone();
                async move { links.until_unlinked(7, long).await }
            });
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(held);
            tokio::time::timeout(Duration::from_secs(2), waiter)
                .await
                .expect("released: it goes on")
                .unwrap();
            assert!(start.elapsed() < Duration::from_secs(2));
            // Not linked: at once; still linked: after at most its period.
            tokio::time::timeout(Duration::from_millis(50), links.until_unlinked(7, long))
                .await
                .expect("gate 7 has no link");
            let _again = links.claim_outbound(7).unwrap();
            let start = tokio::time::Instant::now();
            links.until_unlinked(7, Duration::from_millis(200)).await;
            assert!(start.elapsed() >= Duration::from_millis(200));
        });
    }

    #[test]
    fn one_gate_holds_at_most_its_share_of_inbound_links_and_a_newer_replaces_the_oldest() {
        let links = Arc::new(Links::default());
        let mut held: Vec<_> = (0..MAX_LINKS_PER_PEER)
            .map(|_| links.admit_inbound(7))
            .collect();
        let other = links.admit_inbound(8);
        assert_eq!(links.inbound_from(7), MAX_LINKS_PER_PEER);
        let newest = links.admit_inbound(7);
        assert_eq!(
            links.inbound_from(7),
            MAX_LINKS_PER_PEER,
            "still at most the cap"
        );
        let rang = |l: &Inbound| futures_now(l.replaced.notified());
        assert!(
            rang(&held[0]),
            "the oldest link from gate 7 is told to close"
        );
        assert!(!rang(&held[1]) && !rang(&newest), "the others are not");
        assert!(!rang(&other), "gate 8's link is not touched");
        drop(held.remove(0));
        assert_eq!(
            links.inbound_from(7),
            MAX_LINKS_PER_PEER,
            "a replaced link was already uncounted"
        );
        drop((held, newest, other));
        assert!(
            relock(&links.inbound).by_peer.is_empty(),
            "a gate with no link is forgotten"
        );
    }

    /// Whether a `Notified` is ready at once (a stored permit).
    fn futures_now(notified: tokio::sync::futures::Notified<'_>) -> bool {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(1), notified)
                .await
                .is_ok()
        })
    }

    /// A gate paired again as another device gets a new key pair; its
    /// running exchange would present the old one, which its peers no
    /// longer list: the exchange ends (its owner starts a new one).
    #[test]
    fn the_peer_reload_reports_a_new_key_after_a_pairing_as_another_device() {
        use entrada_domain::sync::protocol::DeviceInfo;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("gate.db")).unwrap());
        let info = DeviceInfo {
            device_id: 1,
            orq: 1,
            venue_id: 1,
            name: "Gate A".into(),
        };
        store.pair(&info, "http://server", "token").unwrap();
        let exchange = LanExchange::new(store.clone()).unwrap();
        exchange
            .reload_peers()
            .expect("the same key: peers reloaded");
        store.pair(&info, "https://server", "new-token").unwrap();
        exchange
            .reload_peers()
            .expect("a new token of the same device keeps the key");
        let other = DeviceInfo {
            device_id: 9,
            ..info
        };
        store.pair(&other, "https://server", "token-9").unwrap();
        assert!(
            matches!(exchange.reload_peers(), Err(LanError::KeyChanged)),
            "the old key is still presented"
        );
        let fresh = LanExchange::new(store.clone()).unwrap();
        fresh
            .reload_peers()
            .expect("a new exchange has the new key");
    }

    /// The running exchange ends with `KeyChanged` within its reload
    /// period, its listener closed (the port can be bound again at once:
    /// the restart with the new key listens there).
    #[test]
    fn a_running_exchange_ends_when_the_gate_is_paired_again_and_frees_its_port() {
        use entrada_domain::sync::protocol::DeviceInfo;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("gate.db")).unwrap());
        let info = DeviceInfo {
            device_id: 1,
            orq: 1,
            venue_id: 1,
            name: "Gate A".into(),
        };
        store.pair(&info, "http://server", "token").unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let exchange = Arc::new(LanExchange::new(store.clone()).unwrap());
            let config = LanConfig {
                listen: Some("127.0.0.1:0".parse().unwrap()),
                peers: vec![],
            };
            let running = tokio::spawn(exchange.clone().run(config));
            let mut port = None;
            for _ in 0..200 {
                port = exchange.listening().map(|a| a.port());
                if port.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let port = port.expect("the exchange listens");
            tokio::time::sleep(Duration::from_millis(1200)).await;
            assert!(!running.is_finished(), "the same key: the exchange runs on");
            let other = DeviceInfo {
                device_id: 9,
                ..info
            };
            store.pair(&other, "https://server", "token-9").unwrap();
            let ended = tokio::time::timeout(Duration::from_secs(5), running)
                .await
                .expect("the exchange ended within its reload period")
                .unwrap();
            assert!(matches!(ended, Err(LanError::KeyChanged)), "{ended:?}");
            TcpListener::bind(("127.0.0.1", port))
                .await
                .expect("the old listener is closed");
        });
    }

    /// A gate the server revoked is dropped from the peer list by the next
    /// sync round (`set_peers`): its live links end within the reload
    /// period, in both directions, the dialer does not spin re-sending the
    /// oldest batch (its cursor is gone), and it is not linked again.
    #[test]
    fn a_gate_dropped_from_the_peer_list_loses_its_links_and_is_not_resent_to() {
        use entrada_domain::slot::{NewSlot, SlotChange};
        use entrada_domain::sync::protocol::DeviceInfo;
        use entrada_domain::Orq;
        let dir = tempfile::tempdir().unwrap();
        let gate = |id: i64, name: &str| {
            let store = Arc::new(Store::open(dir.path().join(format!("{id}.db"))).unwrap());
            let info = DeviceInfo {
                device_id: id,
                orq: 1,
                venue_id: 1,
                name: name.into(),
            };
            store.pair(&info, "http://server", "token").unwrap();
            let key = store.device_public_key().unwrap().unwrap();
            (
                store,
                PeerKey {
                    device_id: id,
                    name: name.into(),
                    public_key: key,
                },
            )
        };
        let (a, a_key) = gate(1, "Gate A");
        let (b, b_key) = gate(2, "Gate B");
        a.set_peers(std::slice::from_ref(&b_key)).unwrap();
        b.set_peers(std::slice::from_ref(&a_key)).unwrap();
        // Three signed events in A's outbox (slot changes: B answers
        // "ignored", which confirms them all the same).
        let now = Utc::now();
        let venue = a.add_venue(Orq(1), "Zoo", "UTC", now).unwrap();
        let slot = a
            .create_slot(
                Orq(1),
                &NewSlot {
                    venue_id: venue.id,
                    date: now.date_naive(),
                    start_time: chrono::NaiveTime::MIN,
                    end_time: chrono::NaiveTime::from_hms_opt(23, 59, 59).unwrap(),
                    total_capacity: 100,
                },
                now,
            )
            .unwrap();
        for n in 0..3 {
            let change = SlotChange {
                total_capacity: Some(101 + n),
                status: None,
            };
            a.update_slot(Orq(1), slot.id, change, now).unwrap();
        }
        assert_eq!(a.events_for_peer(2, 10).unwrap().len(), 3);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let ex_a = Arc::new(LanExchange::new(a.clone()).unwrap());
            let ex_b = Arc::new(LanExchange::new(b.clone()).unwrap());
            let listen = |ex: &Arc<LanExchange>, peers: Vec<String>| {
                let config = LanConfig {
                    listen: Some("127.0.0.1:0".parse().unwrap()),
                    peers,
                };
                tokio::spawn(ex.clone().run(config))
            };
            let until = |what: &str, limit: Duration, done: &dyn Fn() -> bool| {
                let what = what.to_string();
                let start = std::time::Instant::now();
                let ok = loop {
                    if done() {
                        break true;
                    }
                    if start.elapsed() > limit {
                        break false;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                };
                assert!(ok, "{what}: not within {limit:?}");
            };
            let _b_run = listen(&ex_b, vec![]);
            until("B listens", Duration::from_secs(5), &|| {
                ex_b.listening().is_some()
            });
            let b_addr = ex_b.listening().unwrap().to_string();
            let _a_run = listen(&ex_a, vec![b_addr]);
            until("A listens", Duration::from_secs(5), &|| {
                ex_a.listening().is_some()
            });
            // B dials A too, so that A holds an inbound link from B.
            let a_addr = ex_a.listening().unwrap().to_string();
            let b_dials = tokio::spawn(ex_b.clone().dial_forever(a_addr));
            until(
                "both links up and A's events confirmed",
                Duration::from_secs(10),
                &|| {
                    relock(&ex_a.links.outbound).contains(&2)
                        && ex_a.links.inbound_from(2) == 1
                        && a.events_for_peer(2, 10).is_ok_and(|e| e.is_empty())
                },
            );
            assert_eq!(ex_a.pushed(), 3);
            let handshakes = ex_a.handshakes();

            // B revoked: A's sync round drops it from the peer list.
            a.set_peers(&[]).unwrap();
            let start = std::time::Instant::now();
            until("A's links with B ended", Duration::from_secs(3), &|| {
                !relock(&ex_a.links.outbound).contains(&2)
                    && ex_a.links.inbound_from(2) == 0
                    && ex_b.links.inbound_from(1) == 0
            });
            assert!(start.elapsed() < Duration::from_secs(3));
            let pushed = ex_a.pushed();
            assert_eq!(pushed, 3, "no resend of the oldest batch");
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert_eq!(ex_a.pushed(), pushed, "nothing more sent to B");
            assert_eq!(ex_a.handshakes(), handshakes, "B is not linked again");
            assert!(!relock(&ex_a.links.outbound).contains(&2));
            assert_eq!(ex_a.links.inbound_from(2), 0, "B's redials are refused");
            b_dials.abort();
        });
    }
}
