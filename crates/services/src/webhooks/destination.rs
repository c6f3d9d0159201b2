//! Which webhook URLs may be called.
//!
//! A webhook URL must be `http` or `https`. Unless `[webhooks] allow_private_destinations`
//! is set, its host must resolve only to public addresses: every address it resolves to is
//! checked, and one of these refuses the URL:
//!
//! - unspecified (`0.0.0.0/8`, `::`), loopback (`127.0.0.0/8`, `::1`),
//! - link-local (`169.254.0.0/16`, `fe80::/10`) — cloud metadata services live there,
//! - private (`10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`, `fc00::/7`),
//! - shared address space / CGNAT (`100.64.0.0/10`),
//! - multicast (`224.0.0.0/4`, `ff00::/8`), broadcast (`255.255.255.255`) and the rest of
//!   the reserved `240.0.0.0/4`,
//! - an IPv6 address that embeds one of the IPv4 addresses above: IPv4-mapped
//!   (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4
//!   (`2002::/16`).
//!
//! **DNS rebinding.** A name can resolve to a public address when checked and to a private
//! one when connected to. [`resolve`] returns the vetted address so that the sender can
//! connect to exactly it (with reqwest: `ClientBuilder::resolve(host, addr)`, which keeps the
//! host name for TLS and `Host`); [`check`] alone does not close that gap. Redirects are the
//! sender's concern too: a redirect target must be checked like the URL (or redirects not
//! followed).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether `url` may be called: `http`/`https` only, and, unless `allow_private`, a host
/// that resolves to no loopback, link-local or private address. The refusal says why.
pub async fn check(url: &str, allow_private: bool) -> Result<(), String> {
    resolve(url, allow_private).await.map(|_| ())
}

/// Like [`check`], and the address to connect to: the first address the host resolves to
/// (all of them having passed the check), with the URL's port (or 80/443). Connect to this
/// address rather than resolving the name again, so that what was checked is what is called.
pub async fn resolve(url: &str, allow_private: bool) -> Result<SocketAddr, String> {
    let (host, port) = parse(url)?;
    let addrs: Vec<SocketAddr> = match host {
        Host::Ip(ip) => vec![SocketAddr::new(ip, port)],
        Host::Name(name) => tokio::net::lookup_host((name.as_str(), port))
            .await
            .map_err(|e| format!("webhook URL host '{name}' does not resolve: {e}"))?
            .collect(),
    };
    let first = *addrs
        .first()
        .ok_or_else(|| format!("webhook URL '{url}': the host resolves to no address"))?;
    if !allow_private {
        for a in &addrs {
            check_ip(a.ip()).map_err(|why| {
                format!(
                    "webhook URL '{url}' resolves to {}, {why}; refused (set [webhooks] \
                     allow_private_destinations = true to allow such destinations)",
                    a.ip()
                )
            })?;
        }
    }
    Ok(first)
}

/// `Ok` for a public address, or what kind of non-public address `ip` is (e.g.
/// "a private address").
pub fn check_ip(ip: IpAddr) -> Result<(), &'static str> {
    match ip {
        IpAddr::V4(v4) => check_v4(v4),
        IpAddr::V6(v6) => check_v6(v6),
    }
}

fn check_v4(ip: Ipv4Addr) -> Result<(), &'static str> {
    let [a, b, ..] = ip.octets();
    if a == 0 {
        Err("an unspecified address")
    } else if ip.is_loopback() {
        Err("a loopback address")
    } else if ip.is_link_local() {
        Err("a link-local address")
    } else if ip.is_private() {
        Err("a private address")
    } else if a == 100 && (64..128).contains(&b) {
        Err("a shared (CGNAT) address")
    } else if ip.is_multicast() {
        Err("a multicast address")
    } else if ip.is_broadcast() {
        Err("the broadcast address")
    } else if a >= 240 {
        Err("a reserved address")
    } else {
        Ok(())
    }
}

fn check_v6(ip: Ipv6Addr) -> Result<(), &'static str> {
    let seg = ip.segments();
    if ip.is_unspecified() {
        return Err("an unspecified address");
    }
    if ip.is_loopback() {
        return Err("a loopback address");
    }
    if seg[0] & 0xffc0 == 0xfe80 {
        return Err("a link-local address");
    }
    if seg[0] & 0xfe00 == 0xfc00 {
        return Err("a private (unique local) address");
    }
    if ip.is_multicast() {
        return Err("a multicast address");
    }
    let o = ip.octets();
    // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d.
    if let Some(v4) = ip.to_ipv4() {
        return check_v4(v4).map_err(|_| "an IPv6 address embedding a non-public IPv4 address");
    }
    // NAT64 well-known prefix 64:ff9b::/96.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return check_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
            .map_err(|_| "an IPv6 address embedding a non-public IPv4 address");
    }
    // 6to4 2002:AABB:CCDD::/48.
    if seg[0] == 0x2002 {
        return check_v4(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
            .map_err(|_| "an IPv6 address embedding a non-public IPv4 address");
    }
    Ok(())
}

enum Host {
    Ip(IpAddr),
    Name(String),
}

/// The host and port of an `http`/`https` URL.
fn parse(url: &str) -> Result<(Host, u16), String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("webhook URL '{url}' is invalid: {e}"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!(
            "webhook URL '{url}': scheme '{}' is not allowed (only http and https)",
            u.scheme()
        ));
    }
    let port = u
        .port_or_known_default()
        .ok_or_else(|| format!("webhook URL '{url}' has no port"))?;
    // The URL parser normalizes IP literals (`http://127.1/` has host `127.0.0.1`) and keeps
    // IPv6 ones in brackets.
    let host = match u.host_str() {
        Some(h) if h.starts_with('[') => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<Ipv6Addr>()
            .map(|ip| Host::Ip(IpAddr::V6(ip)))
            .map_err(|_| format!("webhook URL '{url}' has an invalid IPv6 host"))?,
        Some(h) if !h.is_empty() => match h.parse::<Ipv4Addr>() {
            Ok(ip) => Host::Ip(IpAddr::V4(ip)),
            Err(_) => Host::Name(h.to_owned()),
        },
        _ => return Err(format!("webhook URL '{url}' has no host")),
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn refused(url: &str) -> String {
        resolve(url, false).await.unwrap_err()
    }

    #[tokio::test]
    async fn schemes() {
        assert!(
            refused("ftp://93.184.215.14/")
                .await
                .contains("scheme 'ftp'")
        );
        assert!(
            refused("file:///etc/passwd")
                .await
                .contains("scheme 'file'")
        );
        assert!(refused("not a url").await.contains("invalid"));
        assert_eq!(
            resolve("https://93.184.215.14/hook", false).await.unwrap(),
            "93.184.215.14:443".parse().unwrap()
        );
        assert_eq!(
            resolve("http://93.184.215.14:8080/", false).await.unwrap(),
            "93.184.215.14:8080".parse().unwrap()
        );
    }

    #[tokio::test]
    async fn non_public_literals_are_refused_by_name() {
        for (url, what) in [
            ("http://127.0.0.1/", "loopback"),
            ("http://127.1.2.3:9000/", "loopback"),
            ("http://127.1/", "loopback"),
            ("http://0x7f000001/", "loopback"),
            ("http://0.0.0.0/", "unspecified"),
            ("http://169.254.169.254/latest/meta-data", "link-local"),
            ("http://10.1.2.3/", "private"),
            ("http://172.16.0.1/", "private"),
            ("http://172.31.255.255/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://100.64.0.1/", "CGNAT"),
            ("http://100.127.255.255/", "CGNAT"),
            ("http://224.0.0.1/", "multicast"),
            ("http://255.255.255.255/", "broadcast"),
            ("http://[::1]/", "loopback"),
            ("http://[::]/", "unspecified"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[fd00::1]/", "unique local"),
            ("http://[fc00::1]/", "unique local"),
            ("http://[ff02::1]/", "multicast"),
            ("http://[::ffff:127.0.0.1]/", "embedding"),
            ("http://[::ffff:10.0.0.1]/", "embedding"),
            ("http://[::ffff:169.254.169.254]/", "embedding"),
            ("http://[64:ff9b::a00:1]/", "embedding"),
            ("http://[2002:c0a8:101::1]/", "embedding"),
        ] {
            let e = refused(url).await;
            assert!(e.contains(what), "{url}: {e}");
            assert!(e.contains("allow_private_destinations"), "{e}");
        }
        let e = refused("http://10.1.2.3/").await;
        assert!(e.contains("resolves to 10.1.2.3, a private address"), "{e}");
    }

    #[tokio::test]
    async fn public_literals_pass_and_private_allowed_when_asked() {
        for url in [
            "http://93.184.215.14/",
            "http://100.63.255.255/",
            "http://100.128.0.1/",
            "http://172.15.255.255/",
            "http://172.32.0.1/",
            "http://[2606:4700:4700::1111]/",
            "http://[::ffff:93.184.215.14]/",
            "http://[2002:5db8:d70e::1]/",
        ] {
            check(url, false)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        check("http://127.0.0.1:8080/", true).await.unwrap();
        check("http://[::1]/", true).await.unwrap();
        check("http://169.254.169.254/", true).await.unwrap();
    }
}
