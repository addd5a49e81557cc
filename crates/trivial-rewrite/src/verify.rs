//! The resolver's second set of routes, for address verification probes
//! (Postfix's resolve_verify class): address_verify_local_transport,
//! _virtual_transport, _relay_transport, _default_transport,
//! _relayhost, _transport_maps, _sender_dependent_relayhost_maps and
//! _sender_dependent_default_transport_maps stand in for the regular
//! parameters, so that probes may go another way than mail (a relay host
//! that answers RCPT TO honestly, for example). Their defaults are the
//! regular values; then the regular settings serve probes too and no
//! table is opened twice.

use config::Config;

use crate::settings::{Error, Settings};

/// (regular parameter, the one that replaces it for probes).
const OVERRIDES: [(&str, &str); 8] = [
    ("local_transport", "address_verify_local_transport"),
    ("virtual_transport", "address_verify_virtual_transport"),
    ("relay_transport", "address_verify_relay_transport"),
    ("default_transport", "address_verify_default_transport"),
    ("relayhost", "address_verify_relayhost"),
    ("transport_maps", "address_verify_transport_maps"),
    (
        "sender_dependent_relayhost_maps",
        "address_verify_sender_dependent_relayhost_maps",
    ),
    (
        "sender_dependent_default_transport_maps",
        "address_verify_sender_dependent_default_transport_maps",
    ),
];

/// The settings for probes; None when they are the regular ones.
///
/// # Errors
/// As [`Settings::load`] for the probe tables.
pub(crate) fn load(config: &Config) -> Result<Option<Settings>, Error> {
    let differs = OVERRIDES
        .iter()
        .any(|(regular, verify)| config.str(regular) != config.str(verify));
    if !differs {
        return Ok(None);
    }
    let values: Vec<(&str, String)> = OVERRIDES
        .iter()
        .map(|(regular, verify)| (*regular, config.str(verify)))
        .collect();
    let mut c = config.clone();
    for (regular, value) in values {
        c.set_override(regular, &value);
    }
    Settings::load(&c).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(main_cf: &str) -> Config {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("main.cf"), main_cf).unwrap();
        Config::load(d.path()).unwrap()
    }

    #[test]
    fn probes_get_their_own_routes_only_when_configured() {
        assert!(
            load(&config("relayhost = [mx.example]\n"))
                .unwrap()
                .is_none()
        );
        let c = config(
            "relayhost = [mx.example]\naddress_verify_relayhost = [probe.example]\n\
             address_verify_local_transport = error:no local probes\n",
        );
        let v = load(&c).unwrap().unwrap();
        assert_eq!(v.relayhost, "[probe.example]");
        assert_eq!(v.local_transport, "error:no local probes");
        assert_eq!(v.default_transport, "smtp");
    }
}
