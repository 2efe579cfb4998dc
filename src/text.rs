//! Small text helpers the file readers share (a leaf: it imports nothing of the crate), so that the
//! environment file, the lint manifest reader and the Kubernetes code do not import each other for them.

/// A serde-saphyr error as (1-based line, one-line message): its rendered snippet and its own
/// "line N column M:" prefix are dropped, since callers put `file:line:` in front.
pub fn yaml_error(e: &serde_saphyr::Error) -> (u64, String) {
    let line = e.location().map(|l| l.line()).unwrap_or(1).max(1);
    let msg = e.to_string();
    let first = msg.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid YAML").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let first = match first.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((loc, rest)) if loc.contains("column") => rest,
        _ => first,
    };
    (line, first.to_string())
}

/// A Kubernetes DNS label (RFC 1123): 1-63 of a-z, 0-9 and '-', not starting or ending with '-'.
pub fn dns_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') && !s.starts_with('-') && !s.ends_with('-')
}

/// A file-name-safe short form of a sentence (`Failover after a power loss!` -> `failover-after-a-power-loss`),
/// at most 60 characters. Pure.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 60 {
            break;
        }
    }
    out.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod slug_tests {
    #[test]
    fn slugs() {
        assert_eq!(super::slug("Failover after a power loss!"), "failover-after-a-power-loss");
        assert_eq!(super::slug("--Ä b--"), "b");
        assert!(super::slug(&"x ".repeat(100)).len() <= 60);
    }
}
