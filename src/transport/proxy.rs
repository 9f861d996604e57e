//! Who a request is from behind a reverse proxy: the `--trusted-proxy` ranges, and the
//! client a trusted proxy names in `X-Forwarded-For` or RFC 7239 `Forwarded`; also the
//! host and scheme it says the client asked for (`X-Forwarded-Host`, `X-Forwarded-Proto`
//! or `Forwarded: host=, proto=`), for the server's own origin and a cookie's `Secure`.
//!
//! Only a peer inside a trusted range is believed, and its list is read from the right,
//! skipping hops that are trusted proxies themselves, so an address a client wrote in
//! front is never taken. Anything that does not parse leaves the peer. This module only
//! reads headers; it must not decide limits (those use the address it returns).

use std::net::IpAddr;

use hyper::header::{HeaderMap, FORWARDED};

use crate::config::Config;

/// Whether `ip` is one of the configured reverse proxies.
pub fn is_trusted_proxy(config: &Config, ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    config.trusted_proxies.iter().any(|n| n.contains(&ip))
}

/// The client seen from `peer` with these request headers (see [`super::http::client_ip`]).
pub fn forwarded_client(config: &Config, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted_proxy(config, peer) {
        return peer;
    }
    let hops = if headers.contains_key(X_FORWARDED_FOR) {
        joined(headers, X_FORWARDED_FOR).and_then(|v| x_forwarded_for(&v))
    } else if headers.contains_key(FORWARDED) {
        joined(headers, FORWARDED.as_str()).and_then(|v| forwarded(&v))
    } else {
        return peer;
    };
    let Some(hops) = hops else {
        return peer;
    };
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        match hop {
            Hop::Unknown => return peer,
            Hop::Addr(ip) if is_trusted_proxy(config, *ip) => nearest = *ip,
            Hop::Addr(ip) => return *ip,
        }
    }
    nearest
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_HOST: &str = "x-forwarded-host";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";

/// The host the client asked a trusted proxy for: `X-Forwarded-Host`, else the `host`
/// of RFC 7239 `Forwarded`, lower-cased; of a list, the first (the hop nearest the
/// client). None from a peer that is not a trusted proxy, or without either header.
pub fn forwarded_host(config: &Config, peer: IpAddr, headers: &HeaderMap) -> Option<String> {
    forwarded_value(config, peer, headers, X_FORWARDED_HOST, "host").map(|h| h.to_ascii_lowercase())
}

/// Whether a trusted proxy says the client's request came over TLS:
/// `X-Forwarded-Proto: https`, else `Forwarded: proto=https` (of a list, the first).
pub fn forwarded_https(config: &Config, peer: IpAddr, headers: &HeaderMap) -> bool {
    forwarded_value(config, peer, headers, X_FORWARDED_PROTO, "proto")
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// The first value of `x_header` (a comma list), else the `param` of the first element
/// of `Forwarded` that has it; only from a trusted proxy.
fn forwarded_value(
    config: &Config,
    peer: IpAddr,
    headers: &HeaderMap,
    x_header: &str,
    param: &str,
) -> Option<String> {
    if !is_trusted_proxy(config, peer) {
        return None;
    }
    let first = |v: String| v.split(',').next().map(|s| s.trim().to_string());
    if headers.contains_key(x_header) {
        return joined(headers, x_header)
            .and_then(first)
            .filter(|v| !v.is_empty());
    }
    let v = joined(headers, FORWARDED.as_str())?;
    let found = split_unquoted(&v, ',').find_map(|element| {
        split_unquoted(element, ';').find_map(|pair| {
            let (k, val) = pair.trim().split_once('=')?;
            if !k.trim().eq_ignore_ascii_case(param) {
                return None;
            }
            let val = val.trim();
            let val = match val.strip_prefix('"') {
                Some(q) => q.strip_suffix('"')?,
                None => val,
            };
            (!val.is_empty()).then(|| val.to_string())
        })
    });
    found
}

/// One hop a proxy reported: an address, or a client it does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Addr(IpAddr),
    Unknown,
}

/// Every line of a header, joined as one list; `None` if one is not text.
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut parts = Vec::new();
    for v in headers.get_all(name) {
        parts.push(v.to_str().ok()?);
    }
    Some(parts.join(","))
}

/// `X-Forwarded-For: client, proxy1, proxy2`: addresses, perhaps with a port.
fn x_forwarded_for(v: &str) -> Option<Vec<Hop>> {
    v.split(',').map(|e| node(e.trim())).collect()
}

/// `Forwarded: for=192.0.2.1;proto=https, for="[2001:db8::1]:443"` (RFC 7239): the
/// `for` of every element, quoted or not.
fn forwarded(v: &str) -> Option<Vec<Hop>> {
    let mut hops = Vec::new();
    for element in split_unquoted(v, ',') {
        let mut found = None;
        for pair in split_unquoted(element, ';') {
            let (k, val) = pair.trim().split_once('=')?;
            if k.trim().eq_ignore_ascii_case("for") {
                let val = val.trim();
                let val = match val.strip_prefix('"') {
                    Some(q) => q.strip_suffix('"')?,
                    None => val,
                };
                found = Some(node(val)?);
            }
        }
        // An element that does not say whom it forwards for hides the client.
        hops.push(found.unwrap_or(Hop::Unknown));
    }
    Some(hops)
}

/// `s` split at `sep` outside double quotes; empty pieces dropped.
fn split_unquoted(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    s.split(move |c: char| {
        if c == '"' {
            quoted = !quoted;
        }
        c == sep && !quoted
    })
    .filter(|p| !p.trim().is_empty())
}

/// An RFC 7239 node (`192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`, `[2001:db8::1]:80`,
/// `unknown`, `_hidden`), or a bare IPv6 address as `X-Forwarded-For` writes it.
fn node(s: &str) -> Option<Hop> {
    if s.eq_ignore_ascii_case("unknown") || s.starts_with('_') {
        return Some(Hop::Unknown);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(Hop::Addr(ip.to_canonical()));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok() || p.starts_with('_'));
        return match (ip.parse::<std::net::Ipv6Addr>(), port_ok) {
            (Ok(ip), true) => Some(Hop::Addr(IpAddr::V6(ip).to_canonical())),
            _ => None,
        };
    }
    let (ip, port) = s.split_once(':')?;
    let ip = ip.parse::<std::net::Ipv4Addr>().ok()?;
    (port.parse::<u16>().is_ok() || port.starts_with('_')).then_some(Hop::Addr(IpAddr::V4(ip)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn config(proxies: &[&str]) -> Config {
        let mut c = Config::new("127.0.0.1:0".parse().expect("addr"), PathBuf::new());
        c.trusted_proxies = proxies
            .iter()
            .map(|p| crate::config::parse_trusted_proxy(p).expect("net"))
            .collect();
        c
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    /// The client seen from `peer` with these header lines.
    fn client(c: &Config, peer: &str, lines: &[(&str, &str)]) -> IpAddr {
        let mut h = HeaderMap::new();
        for (k, v) in lines {
            h.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                hyper::header::HeaderValue::from_str(v).expect("value"),
            );
        }
        forwarded_client(c, ip(peer), &h)
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let c = config(&["10.0.0.0/8"]);
        for lines in [
            &[("x-forwarded-for", "203.0.113.9")][..],
            &[("forwarded", "for=203.0.113.9")],
            &[
                ("x-forwarded-for", "10.0.0.1"),
                ("forwarded", "for=10.0.0.2"),
            ],
        ] {
            assert_eq!(client(&c, "198.51.100.7", lines), ip("198.51.100.7"));
        }
        assert_eq!(
            client(
                &config(&[]),
                "127.0.0.1",
                &[("x-forwarded-for", "203.0.113.9")]
            ),
            ip("127.0.0.1"),
            "no proxy is trusted unless configured"
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_read_from_the_right() {
        let c = config(&["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
        let xff = |v| client(&c, "127.0.0.1", &[("x-forwarded-for", v)]);
        assert_eq!(xff("203.0.113.9"), ip("203.0.113.9"));
        // What the client sent is on the left; the proxy appended what it saw.
        assert_eq!(
            xff("1.2.3.4, 203.0.113.9"),
            ip("203.0.113.9"),
            "spoof by prepending"
        );
        assert_eq!(
            xff("1.2.3.4, 203.0.113.9, 10.1.2.3"),
            ip("203.0.113.9"),
            "a chain of proxies"
        );
        assert_eq!(
            xff("10.9.9.9, 10.1.2.3"),
            ip("10.9.9.9"),
            "all proxies: the farthest"
        );
        assert_eq!(xff("2001:db8::5"), ip("2001:db8::5"));
        assert_eq!(xff("203.0.113.9:4711"), ip("203.0.113.9"));
        assert_eq!(xff("[2001:db8::5]:4711"), ip("2001:db8::5"));
        assert_eq!(xff("::ffff:203.0.113.9"), ip("203.0.113.9"));
        // Several header lines are one list, in order.
        assert_eq!(
            client(
                &c,
                "127.0.0.1",
                &[
                    ("x-forwarded-for", "6.6.6.6"),
                    ("x-forwarded-for", "203.0.113.9")
                ]
            ),
            ip("203.0.113.9")
        );
        // An IPv4-mapped peer address is the proxy's too.
        assert_eq!(
            client(
                &c,
                "::ffff:127.0.0.1",
                &[("x-forwarded-for", "203.0.113.9")]
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client(&c, "127.0.0.1", &[]),
            ip("127.0.0.1"),
            "no header: the proxy"
        );
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let c = config(&["127.0.0.1", "10.0.0.0/8"]);
        let fwd = |v| client(&c, "127.0.0.1", &[("forwarded", v)]);
        assert_eq!(fwd("for=203.0.113.9"), ip("203.0.113.9"));
        assert_eq!(
            fwd("For=\"203.0.113.9:4711\";proto=https"),
            ip("203.0.113.9")
        );
        assert_eq!(
            fwd("for=\"[2001:db8:cafe::17]:4711\""),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            fwd("for=\"[2001:db8:cafe::17]\";by=10.0.0.1"),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            fwd("for=1.2.3.4, for=203.0.113.9;proto=https, for=10.0.0.3"),
            ip("203.0.113.9")
        );
        assert_eq!(
            fwd("proto=\"a,b\";for=203.0.113.9"),
            ip("203.0.113.9"),
            "a quoted comma"
        );
        // Unknown or obfuscated: nothing further left is believed.
        assert_eq!(fwd("for=1.2.3.4, for=unknown"), ip("127.0.0.1"));
        assert_eq!(fwd("for=1.2.3.4, for=_hidden"), ip("127.0.0.1"));
        assert_eq!(fwd("for=1.2.3.4, proto=https"), ip("127.0.0.1"), "no for=");
        // X-Forwarded-For wins: a client's own Forwarded passed through is not read.
        assert_eq!(
            client(
                &c,
                "127.0.0.1",
                &[
                    ("forwarded", "for=6.6.6.6"),
                    ("x-forwarded-for", "203.0.113.9")
                ]
            ),
            ip("203.0.113.9")
        );
    }

    fn headers(lines: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in lines {
            h.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                hyper::header::HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn the_forwarded_host_and_scheme_come_only_from_a_trusted_proxy() {
        let c = config(&["10.0.0.0/8"]);
        let (proxy, stranger) = (ip("10.0.0.1"), ip("198.51.100.7"));
        let x = headers(&[
            ("x-forwarded-host", "Chat.Example.com, inner.local"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            forwarded_host(&c, proxy, &x).as_deref(),
            Some("chat.example.com")
        );
        assert!(forwarded_https(&c, proxy, &x));
        assert_eq!(forwarded_host(&c, stranger, &x), None);
        assert!(!forwarded_https(&c, stranger, &x));
        let rfc = headers(&[(
            "forwarded",
            "for=203.0.113.9;proto=https;host=\"chat.example.com:8443\", for=10.0.0.2;proto=http",
        )]);
        assert_eq!(
            forwarded_host(&c, proxy, &rfc).as_deref(),
            Some("chat.example.com:8443")
        );
        assert!(forwarded_https(&c, proxy, &rfc));
        assert!(!forwarded_https(
            &c,
            proxy,
            &headers(&[("x-forwarded-proto", "http")])
        ));
        assert!(!forwarded_https(&c, proxy, &HeaderMap::new()));
        assert_eq!(
            forwarded_host(&c, proxy, &headers(&[("x-forwarded-host", "")])),
            None
        );
    }

    #[test]
    fn a_header_that_does_not_parse_leaves_the_peer() {
        let c = config(&["127.0.0.1"]);
        for (k, v) in [
            ("x-forwarded-for", "not an address"),
            ("x-forwarded-for", "203.0.113.9, "),
            ("x-forwarded-for", "203.0.113.9,,1.2.3.4"),
            ("x-forwarded-for", "203.0.113.9:99999"),
            ("x-forwarded-for", "[203.0.113.9]"),
            ("x-forwarded-for", "2001:db8::1:80:"),
            ("forwarded", "for=\"[2001:db8::1\""),
            ("forwarded", "for"),
            ("forwarded", "for=\"203.0.113.9"),
            ("forwarded", "for=203.0.113.9.7"),
        ] {
            assert_eq!(
                client(&c, "127.0.0.1", &[(k, v)]),
                ip("127.0.0.1"),
                "{k}: {v}"
            );
        }
    }
}
