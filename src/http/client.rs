//! Who is calling, worked out from the request: the client's IP address,
//! user agent and request id (the [`ClientInfo`] record). Forwarding
//! headers (`X-Forwarded-For`, `Forwarded`) are believed only when the
//! direct peer is one of `TRUSTED_PROXIES`; otherwise the socket address is
//! the client, so a spoofed header changes nothing.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use super::request_id::X_REQUEST_ID;
use crate::app::AppState;
use crate::client::ClientInfo;
use crate::config::Config;

/// Longest user agent kept with a session; longer ones are cut (at a
/// character boundary). It is a label for the user, not input to validate.
const USER_AGENT_LIMIT: usize = 512;

/// The client record of a request.
fn client_of(config: &Config, parts: &Parts) -> ClientInfo {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_canonical());
    let ip = peer.map(|peer| client_ip(config, peer, &parts.headers));
    let user_agent = parts
        .headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| {
            ua.chars()
                .filter(|c| !c.is_control())
                .take(USER_AGENT_LIMIT)
                .collect()
        });
    let request_id = parts
        .headers
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    ClientInfo {
        ip,
        user_agent,
        request_id,
    }
}

/// Works out who is calling once per request, before the request is logged,
/// so the request logs, sessions, limits and audit events all name the
/// same client.
pub async fn identify(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let client = client_of(&state.config, &parts);
    parts.extensions.insert(client);
    next.run(Request::from_parts(parts, body)).await
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientInfo>()
            .cloned()
            .unwrap_or_else(|| client_of(&state.config, parts)))
    }
}

/// The client address for a request from `peer`. Walking the forwarding
/// chain from the nearest hop outwards, trusted proxies are skipped and the
/// first address that is not one is the client. An unreadable entry stops
/// the walk: nothing beyond it can be trusted.
///
/// Every address is canonical: an IPv4 client of a dual-stack socket
/// (`::ffff:192.0.2.1`) is `192.0.2.1`, so it matches `TRUSTED_PROXIES`,
/// has one rate-limit allowance and is logged one way.
pub fn client_ip(config: &Config, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let peer = peer.to_canonical();
    if !config.is_trusted_proxy(peer) {
        return peer;
    }
    let hops = forwarded_for(headers);
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = hop else { break };
        client = *ip;
        if !config.is_trusted_proxy(*ip) {
            break;
        }
    }
    client
}

/// The addresses in `X-Forwarded-For`, or else in `Forwarded`'s `for=`
/// parameters, nearest hop last; `None` for an entry that is not an address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let joined = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
    };
    let xff = joined("x-forwarded-for");
    if !xff.trim().is_empty() {
        return xff
            .split(',')
            .map(|hop| parse_address(hop.trim()))
            .collect();
    }
    joined("forwarded")
        .split(',')
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_address(value.trim().trim_matches('"')))
            })
        })
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:4711`, in
/// canonical form.
fn parse_address(raw: &str) -> Option<IpAddr> {
    raw.parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| raw.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::collections::HashMap;

    fn config(trusted: &str) -> Config {
        let vars = HashMap::from([("TRUSTED_PROXIES".to_owned(), trusted.to_owned())]);
        Config::from_map(&vars).unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let c = config("10.0.0.0/8");
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(client_ip(&c, ip("203.0.113.9"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_proxy_names_the_first_untrusted_hop() {
        let c = config("10.0.0.0/8, 192.168.1.1");
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.2.3")]);
        assert_eq!(client_ip(&c, ip("192.168.1.1"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn the_forwarded_header_is_read_too() {
        let c = config("10.0.0.1");
        let h = headers(&[(
            "forwarded",
            r#"for=192.0.2.60;proto=http, for="[2001:db8::1]:4711""#,
        )]);
        assert_eq!(client_ip(&c, ip("10.0.0.1"), &h), ip("2001:db8::1"));
    }

    #[test]
    fn ipv4_mapped_addresses_are_plain_ipv4() {
        let c = config("127.0.0.1");
        let h = headers(&[("x-forwarded-for", "::ffff:198.51.100.7")]);
        assert_eq!(
            client_ip(&c, ip("::ffff:127.0.0.1"), &h),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(&c, ip("::ffff:203.0.113.9"), &HeaderMap::new()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_hop() {
        let c = config("10.0.0.0/8");
        let h = headers(&[("x-forwarded-for", "1.2.3.4, not-an-ip, 10.0.0.2")]);
        assert_eq!(client_ip(&c, ip("10.0.0.1"), &h), ip("10.0.0.2"));
        assert_eq!(
            client_ip(&c, ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }
}
