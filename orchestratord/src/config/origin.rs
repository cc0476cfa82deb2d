//! Browser origins in the configuration (`allowed_origins`): their syntax, checked at startup.

/// `host[:port]` (the host may be a bracketed IPv6 address) as host and port text.
pub fn split_authority(authority: &str) -> (&str, Option<&str>) {
    let host_end = if authority.starts_with('[') {
        authority.find(']').map_or(authority.len(), |i| i + 1)
    } else {
        authority.find(':').unwrap_or(authority.len())
    };
    let (host, rest) = authority.split_at(host_end);
    match rest.strip_prefix(':') {
        Some(port) => (host, Some(port)),
        None if rest.is_empty() => (host, None),
        // Text after the host that is not a port: keep it in the host so it fails the check.
        None => (authority, None),
    }
}

/// An allowed origin as browsers send it: `http(s)://host[:port]`, no path, no wildcard.
pub fn check_origin(origin: &str) -> Result<(), String> {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .ok_or("write an origin as http://host[:port] or https://host[:port]")?;
    let (host, port) = split_authority(rest);
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        }
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        }
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p != 0));
    if !host_ok || !port_ok {
        return Err(
            "write an origin as scheme://host[:port], without a path, a trailing '/' or a wildcard"
                .into(),
        );
    }
    Ok(())
}
