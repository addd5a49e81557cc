//! SMTP AUTH: the SASL exchange with the auth server on a worker thread,
//! after smtpd_client_auth_rate_limit.

use super::*;

impl Conn {
    pub(super) fn auth_begin(
        &mut self,
        shared: &Shared,
        mechanism: String,
        initial: Option<String>,
    ) {
        let info = crate::sasl::ClientInfo {
            service: "smtp".into(),
            remote_ip: self.peer.addr.to_string(),
            local_ip: self.peer.local.map(|a| a.to_string()).unwrap_or_default(),
            secured: self.session.tls_active(),
        };
        let path = shared.settings.sasl_path.clone().unwrap_or_default();
        let ex = Box::new(crate::sasl::Exchange::new(path, mechanism, info));
        self.run_sasl(shared, ex, crate::sasl::Input::Begin(initial));
    }

    pub(super) fn auth_continue(&mut self, shared: &Shared, line: String) {
        let Some(ex) = self.sasl.take() else {
            return;
        };
        self.run_sasl(shared, ex, crate::sasl::Input::Respond(line));
    }

    pub(super) fn run_sasl(
        &mut self,
        shared: &Shared,
        mut ex: Box<crate::sasl::Exchange>,
        input: crate::sasl::Input,
    ) {
        let namaddr = self.namaddr.clone();
        let settings = Arc::clone(&shared.settings);
        let peer = self.peer.clone();
        self.wait = Wait::Worker;
        shared.pool.run(self.key, move || {
            if matches!(input, crate::sasl::Input::Begin(_))
                && let Some(anvil) = &settings.anvil
                && let Some(reply) = crate::anvil::auth(&settings, anvil, &peer)
            {
                return Answer::Auth(AuthStep::Failure(reply), ex);
            }
            let step = ex.step(input, &namaddr);
            Answer::Auth(step, ex)
        });
    }
}
