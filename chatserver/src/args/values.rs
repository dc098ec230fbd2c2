//! Each flag's value, checked as it is parsed: a bad one is refused in
//! words that say what to give (a range, a shape), not the parser's.

/// A numeric flag: a whole number from `lo` to `hi` (`u64::MAX`: at
/// least `lo`), refused in those words whatever is wrong
/// with it (a sign, a letter, a fraction, too large), rather than in the
/// parser's ("invalid digit found in string").
pub(super) fn whole<T>(
    lo: u64,
    hi: u64,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
{
    move |s: &str| {
        let want = if hi == u64::MAX {
            format!("a whole number, at least {lo}")
        } else {
            format!("a whole number from {lo} to {hi}")
        };
        s.parse::<u64>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .and_then(|n| T::try_from(n).ok())
            .ok_or(want)
    }
}

/// An on/off flag's value from the environment: the words README lists
/// (and `y`, `t`, `n`, `f`), in any case; a bad one is refused naming
/// them (clap's own parser said only "value was not a boolean").
pub(super) fn on_off(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" | "t" => Ok(true),
        "0" | "false" | "no" | "off" | "n" | "f" => Ok(false),
        _ => Err("use 1, true, yes or on, or 0, false, no or off".to_owned()),
    }
}

/// `--listen`: HOST:PORT, the host a name or an address, the port 0 to
/// 65535. Whether the name resolves is known only when binding.
pub(super) fn parse_listen(s: &str) -> Result<String, String> {
    let shape = "use HOST:PORT, such as 127.0.0.1:7878, 0.0.0.0:7878 or [::]:7878";
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("no port; {shape}"));
    };
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(format!("no host; {shape}"));
    }
    port.parse::<u16>()
        .map_err(|_| format!("the port {port:?} is not 0 to 65535; {shape}"))?;
    Ok(s.to_owned())
}

/// `--allowed-origins`: each an origin as a browser sends it,
/// `SCHEME://HOST[:PORT]` (`https://chat.example.org`, an app's
/// `tauri://localhost`; a trailing `/` is dropped, case does not matter)
/// or `null` (a page opened from a file, a sandboxed frame). A host alone,
/// or a URL with a path, never equals a browser's origin: refused. So is
/// a port that is not 1 to 65535; the scheme's default one (`:443` after
/// `https`, `:80` after `http`) is dropped, as a browser leaves it out.
/// An empty one (a trailing comma) is `None`: skipped.
pub(super) fn parse_origin(s: &str) -> Result<Option<String>, String> {
    // Spaces around one are let be.
    let origin = s.trim().trim_end_matches('/');
    if origin.is_empty() {
        return Ok(None);
    }
    if origin.eq_ignore_ascii_case("null") {
        return Ok(Some(origin.to_owned()));
    }
    let shape = "an origin is SCHEME://HOST with a port or not and nothing after, such as https://chat.example.org, or null";
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err(shape.to_owned());
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let rest_ok = !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@'])
        && !rest.chars().any(char::is_whitespace);
    if !scheme_ok || !rest_ok {
        return Err(shape.to_owned());
    }
    // The port: after the last `:`, outside an IPv6 address's brackets.
    let (host, port) = crate::web::split_port(rest);
    if host.is_empty() || host == "[]" {
        return Err(shape.to_owned());
    }
    let Some(port) = port else {
        return Ok(Some(origin.to_owned()));
    };
    let number = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0 && port.bytes().all(|b| b.is_ascii_digit()));
    let Some(number) = number else {
        return Err(format!("the port {port:?} of {origin} is not 1 to 65535"));
    };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    };
    if default == Some(number) {
        // A browser never sends it: `https://chat.example.org:443` would
        // never match.
        return Ok(Some(format!("{scheme}://{host}")));
    }
    Ok(Some(origin.to_owned()))
}

/// A network for `--metrics-allow`: `ADDRESS/PREFIX`, or an address
/// alone for that one host; spaces around it are let be, and an empty
/// one (a trailing comma) is `None`: skipped, as in `--allowed-origins`.
pub(super) fn parse_network(s: &str) -> Result<Option<ipnet::IpNet>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(net) = s.parse::<ipnet::IpNet>() {
        return Ok(Some(net));
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(Some(ip.into()));
    }
    match s.split_once('/') {
        Some((ip, prefix)) if ip.parse::<std::net::IpAddr>().is_ok() => {
            let max = if ip.contains(':') { 128 } else { 32 };
            Err(format!(
                "the prefix length {prefix} is not a number from 0 to {max}"
            ))
        }
        _ => Err(
            "a network is ADDRESS/PREFIX, such as 10.0.0.0/8 or fd00::/8, or one address"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_a_browser_can_send_are_taken() {
        for (given, kept) in [
            ("https://chat.example.org", "https://chat.example.org"),
            ("https://chat.example.org/", "https://chat.example.org"),
            (" http://192.168.1.10:7878 ", "http://192.168.1.10:7878"),
            ("HTTPS://Chat.Example.org", "HTTPS://Chat.Example.org"),
            ("http://[::1]:7878", "http://[::1]:7878"),
            ("http://[::1]", "http://[::1]"),
            ("tauri://localhost", "tauri://localhost"),
            ("chrome-extension://abcdef", "chrome-extension://abcdef"),
            ("null", "null"),
            // The scheme's default port: a browser leaves it out.
            ("https://chat.example.org:443", "https://chat.example.org"),
            ("HTTPS://chat.example.org:443/", "HTTPS://chat.example.org"),
            ("http://192.168.1.10:80", "http://192.168.1.10"),
            ("http://[::1]:80", "http://[::1]"),
            ("https://chat.example.org:80", "https://chat.example.org:80"),
            ("http://chat.example.org:443", "http://chat.example.org:443"),
            ("tauri://localhost:443", "tauri://localhost:443"),
        ] {
            assert_eq!(parse_origin(given), Ok(Some(kept.to_owned())), "{given:?}");
        }
        assert_eq!(parse_origin(""), Ok(None));
        assert_eq!(parse_origin(" "), Ok(None));
        for bad in [
            "chat.example.org",
            "https://",
            "https://chat.example.org/room",
            "https://a.example?x",
            "https://user@a.example",
            "https://a b",
            "1http://a.example",
            "https://:443",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "http://x.org:99999",
            "http://x.org:0",
            "http://x.org:",
            "http://x.org:+80",
            "http://x.org:http",
            "http://[::1]:65536",
        ] {
            let why = parse_origin(bad).unwrap_err();
            assert!(why.contains("not 1 to 65535"), "{bad:?}: {why}");
        }
    }

    #[test]
    fn networks_take_a_prefix_or_one_address() {
        for (given, kept) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            (" 192.168.0.0/16", "192.168.0.0/16"),
            ("10.0.0.1", "10.0.0.1/32"),
            ("fd00::/8", "fd00::/8"),
            ("::1", "::1/128"),
        ] {
            let net = parse_network(given).map(|n| n.map(|n| n.to_string()));
            assert_eq!(net, Ok(Some(kept.to_owned())), "{given:?}");
        }
        // An empty one (a trailing comma) is skipped, as an origin's is.
        assert_eq!(parse_network(""), Ok(None));
        assert_eq!(parse_network(" "), Ok(None));
        let wrong = parse_network("10.0.0.0/33").unwrap_err();
        assert!(
            wrong.contains("prefix length 33") && wrong.contains("0 to 32"),
            "{wrong}"
        );
        let wrong = parse_network("fd00::/129").unwrap_err();
        assert!(wrong.contains("0 to 128"), "{wrong}");
        for bad in ["ten", "10.0.0/8", "10.0.0.0/8/8"] {
            assert!(parse_network(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn listen_takes_host_and_port() {
        for ok in [
            "127.0.0.1:7878",
            "0.0.0.0:0",
            "[::]:7878",
            "localhost:65535",
            "::1:7878",
        ] {
            assert_eq!(parse_listen(ok).as_deref(), Ok(ok), "{ok:?}");
        }
        for bad in [
            "nonsense",
            ":7878",
            "127.0.0.1:",
            "127.0.0.1:65536",
            "127.0.0.1:-1",
            "a b:1",
        ] {
            assert!(parse_listen(bad).is_err(), "{bad:?}");
        }
    }
}
