//! The settings screen's LAN exchange switch (issue 14): on with a listen
//! port, or off (the default), kept in the replica's `device_settings`.
//! `--lan-listen` / `--peer` (or their environment) win over it.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use entrada::sync::lan::LanConfig;

use super::views::{CommandError, LanView};
use super::GateService;

/// Key of the switch in the replica: the port, absent or empty when off.
pub const LAN_PORT_KEY: &str = "lan_listen_port";
/// Ports the settings screen accepts (no privileged port).
pub const LAN_PORTS: std::ops::RangeInclusive<u16> = 1024..=65535;

/// The port the settings screen saved (None: off, or a value that no
/// longer parses: the gate must start).
pub fn saved_lan_port(saved: &BTreeMap<String, String>) -> Option<u16> {
    saved
        .get(LAN_PORT_KEY)
        .and_then(|v| v.trim().parse().ok())
        .filter(|p| LAN_PORTS.contains(p))
}

/// What the exchange runs with: the flags when they name anything, else the
/// saved switch (listening on every address, discovery finds the peers),
/// else off (an empty config).
pub fn lan_config(flags: &LanConfig, saved: &BTreeMap<String, String>) -> LanConfig {
    if flags.listen.is_some() || !flags.peers.is_empty() {
        return flags.clone();
    }
    LanConfig {
        listen: saved_lan_port(saved).map(|p| SocketAddr::from((Ipv4Addr::UNSPECIFIED, p))),
        peers: Vec::new(),
    }
}

/// The exchange's state for the screens: `flags` and `saved` as
/// [`lan_config`] reads them, `listening` as the running exchange says.
pub fn lan_view(
    flags: &LanConfig,
    saved: &BTreeMap<String, String>,
    listening: Option<SocketAddr>,
) -> LanView {
    let config = lan_config(flags, saved);
    let state = match (config.listen, listening, config.peers.is_empty()) {
        (None, _, true) => "off",
        (Some(_), Some(_), _) => "listening",
        (Some(_), None, _) => "starting",
        (None, _, false) => "peers",
    };
    LanView {
        state: state.into(),
        address: listening
            .filter(|_| state == "listening")
            .map(|a| a.to_string()),
        from_flags: flags.listen.is_some() || !flags.peers.is_empty(),
    }
}

impl GateService {
    /// The switch as saved (None: off).
    pub fn lan_port(&self) -> Result<Option<u16>, CommandError> {
        Ok(saved_lan_port(&self.store.device_settings()?))
    }

    /// Turns the LAN exchange on (listening on `port`) or off; the sync
    /// loop starts or stops it within a second. Supervisors only.
    pub fn set_lan_port(&self, port: Option<u16>) -> Result<Option<u16>, CommandError> {
        self.supervisor("change the LAN exchange")?;
        if let Some(p) = port {
            if !LAN_PORTS.contains(&p) {
                return Err(CommandError::new(
                    "INVALID_INPUT",
                    format!(
                        "the LAN port must be between {} and {}",
                        LAN_PORTS.start(),
                        LAN_PORTS.end()
                    ),
                ));
            }
        }
        let value = port.map(|p| p.to_string()).unwrap_or_default();
        self.store.set_device_setting(LAN_PORT_KEY, &value)?;
        Ok(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::tests::demo_gate;
    use std::time::Duration;

    fn saved(v: Option<&str>) -> BTreeMap<String, String> {
        v.map(|v| (LAN_PORT_KEY.to_string(), v.to_string()))
            .into_iter()
            .collect()
    }

    #[test]
    fn flags_win_over_the_saved_switch_which_is_off_by_default() {
        let none = LanConfig::default();
        let flags = LanConfig {
            listen: Some("10.0.0.5:7000".parse().unwrap()),
            peers: vec!["10.0.0.6:7000".into()],
        };
        let peers_only = LanConfig {
            listen: None,
            peers: vec!["10.0.0.6:7000".into()],
        };
        // (flags, saved) → (listen, peers)
        #[allow(clippy::type_complexity)]
        let cases: Vec<(&LanConfig, Option<&str>, Option<&str>, usize)> = vec![
            (&none, None, None, 0),
            (&none, Some(""), None, 0),
            (&none, Some("7700"), Some("0.0.0.0:7700"), 0),
            (&none, Some("80"), None, 0),
            (&none, Some("port"), None, 0),
            (&flags, Some("7700"), Some("10.0.0.5:7000"), 1),
            (&peers_only, Some("7700"), None, 1),
        ];
        for (i, (flags, value, listen, peers)) in cases.into_iter().enumerate() {
            let c = lan_config(flags, &saved(value));
            assert_eq!(
                (c.listen, c.peers.len()),
                (listen.map(|l| l.parse().unwrap()), peers),
                "case {i}"
            );
        }
    }

    #[test]
    fn the_screens_say_whether_the_exchange_listens_and_who_set_it() {
        let none = LanConfig::default();
        let flags = LanConfig {
            listen: Some("10.0.0.5:7000".parse().unwrap()),
            peers: vec![],
        };
        let peers_only = LanConfig {
            listen: None,
            peers: vec!["10.0.0.6:7000".into()],
        };
        let bound: SocketAddr = "0.0.0.0:7700".parse().unwrap();
        // (flags, saved port, bound) → (state, address, from_flags)
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &LanConfig,
            Option<&str>,
            Option<SocketAddr>,
            &str,
            Option<&str>,
            bool,
        )> = vec![
            (&none, None, None, "off", None, false),
            (&none, None, Some(bound), "off", None, false),
            (&none, Some("7700"), None, "starting", None, false),
            (
                &none,
                Some("7700"),
                Some(bound),
                "listening",
                Some("0.0.0.0:7700"),
                false,
            ),
            (&flags, None, None, "starting", None, true),
            (
                &flags,
                Some("7700"),
                Some(bound),
                "listening",
                Some("0.0.0.0:7700"),
                true,
            ),
            (&peers_only, Some("7700"), None, "peers", None, true),
        ];
        for (i, (flags, port, bound, state, address, from_flags)) in cases.into_iter().enumerate() {
            let v = lan_view(flags, &saved(port), bound);
            assert_eq!(
                (v.state.as_str(), v.address.as_deref(), v.from_flags),
                (state, address, from_flags),
                "case {i}"
            );
        }
    }

    #[test]
    fn the_lan_switch_is_for_supervisors_and_is_kept() {
        let (dir, gate) = demo_gate(Some(1), Duration::from_secs(60));
        assert_eq!(gate.set_lan_port(Some(7700)).unwrap_err().code, "FORBIDDEN");
        assert_eq!(gate.lan_port().unwrap(), None, "off by default");
        gate.sign_in(2, entrada::demo::SUPERVISOR_PIN).unwrap();
        assert_eq!(
            gate.set_lan_port(Some(80)).unwrap_err().code,
            "INVALID_INPUT"
        );
        assert_eq!(gate.set_lan_port(Some(7700)).unwrap(), Some(7700));
        // Kept in the replica: another opening of the file sees it.
        let again = entrada::store::Store::open(dir.path().join("gate.db")).unwrap();
        let on = lan_config(&LanConfig::default(), &again.device_settings().unwrap());
        assert_eq!(on.listen, Some("0.0.0.0:7700".parse().unwrap()));
        assert_eq!(gate.lan_port().unwrap(), Some(7700));
        assert_eq!(gate.set_lan_port(None).unwrap(), None);
        let off = lan_config(&LanConfig::default(), &again.device_settings().unwrap());
        assert_eq!(off.listen, None);
    }
}
