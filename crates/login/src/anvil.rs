//! Connections per client address through the anvil service: a login
//! process counts itself in at connect and out when the session ends.
//! When anvil cannot be reached the client is let in, with a warning.

use std::path::Path;

use proto::anvil as wire;

/// A counted connection; counted out on drop.
#[derive(Debug)]
pub struct Counted {
    service: String,
    client: String,
}

/// Counts the connection in. `Err(count)` when the client already has
/// `limit` connections (limit 0: no limit, nothing is counted).
pub fn connect(service: &str, client: &str, limit: u32) -> Result<Option<Counted>, u32> {
    if limit == 0 {
        return Ok(None);
    }
    let req = wire::Request::Connect {
        service: service.to_string(),
        client: client.to_string(),
    };
    match wire::call(Path::new("."), wire::SERVICE, &req) {
        Ok((count, _)) => {
            let counted = Counted {
                service: service.to_string(),
                client: client.to_string(),
            };
            if count > limit {
                drop(counted);
                Err(count)
            } else {
                Ok(Some(counted))
            }
        }
        Err(e) => {
            maillog::warning!("problem talking to server {}: {e}", wire::SERVICE);
            Ok(None)
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let req = wire::Request::Disconnect {
            service: std::mem::take(&mut self.service),
            client: std::mem::take(&mut self.client),
        };
        let _ = wire::call(Path::new("."), wire::SERVICE, &req);
    }
}
