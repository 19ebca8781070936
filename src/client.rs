//! Who made a request: the record that sessions, limits, the audit log and
//! the request logs all name the caller by. The HTTP edge builds it once per
//! request (see `http::client`); the command line uses the empty one.

use std::net::IpAddr;

/// Empty (`Default`) for actions taken at the command line.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's address, canonical (an IPv4-mapped IPv6 address is
    /// plain IPv4), after any trusted proxies.
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
}
