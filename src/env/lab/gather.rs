//! A failed scenario's gather on the lab: each site's Ceph status and health, the parts of `ceph osd dump`
//! that DR turns on (flags, pools, blocklist, stretch mode), rbd-mirror's pool status with every image,
//! and the daemons' logs over the scenario's time span.

use super::site::Site;
use crate::ports::Gathered;
use std::path::Path;
use std::time::Duration;

/// The lines of a Ceph log from `since` (Unix seconds) on. A line without a timestamp of its own (a
/// continuation) goes with the line before it. Pure.
pub fn log_lines_since(text: &str, since: f64) -> String {
    let mut out = String::new();
    let mut keep = false;
    for line in text.lines() {
        if let Some(t) = ceph_time(line) {
            keep = t >= since;
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The time a Ceph log line starts with (`2026-11-30T13:41:07.123+0000 ...`), Unix seconds.
fn ceph_time(line: &str) -> Option<f64> {
    let first = line.split_whitespace().next()?;
    if first.len() < 19 || !first.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    // `+0000` as RFC 3339 writes it (`+00:00`)
    let normal = match first.len().checked_sub(5).map(|i| first.split_at(i)) {
        Some((head, off)) if (off.starts_with('+') || off.starts_with('-')) && off[1..].bytes().all(|b| b.is_ascii_digit()) => {
            format!("{head}{}:{}", &off[..3], &off[3..])
        }
        _ => first.to_string(),
    };
    crate::clock::parse_rfc3339(&normal)
}

/// The parts of `ceph osd dump` a DR drill turns on. Pure.
pub fn osd_dump_parts(dump: &str) -> String {
    dump.lines()
        .filter(|l| ["epoch", "fsid", "flags", "pool ", "blocklist", "stretch", "osd.", "require_", "crush_version"].iter().any(|p| l.starts_with(p)))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn put(dir: &Path, name: &str, text: &str, what: &str, g: &mut Gathered) {
    let p = dir.join(name);
    match std::fs::write(&p, text) {
        Ok(()) => g.items.push(format!("{}: {what}", p.display())),
        Err(e) => g.missing.push(format!("{}: {e}", p.display())),
    }
}

/// One site's gather under `dir/site-<name>/`.
pub async fn site(s: &mut Site, dir: &Path, since_unix: f64) -> Gathered {
    let mut g = Gathered::default();
    let d = dir.join(format!("site-{}", s.name));
    if let Err(e) = std::fs::create_dir_all(d.join("log")) {
        g.missing.push(format!("{}: {e}", d.display()));
        return g;
    }
    if !s.powered() {
        g.missing.push(format!("site {}: powered off, its Ceph cannot be asked (its logs are gathered)", s.name));
    } else {
        let mirrors = s.daemons.iter().any(|x| x.name.starts_with("rbd-mirror"));
        let mut asks: Vec<(&str, &str, Vec<&str>, &str)> = vec![
            ("ceph-status.txt", "ceph", vec!["status"], "ceph status"),
            ("ceph-health-detail.txt", "ceph", vec!["health", "detail"], "ceph health detail"),
            ("osd-dump.txt", "ceph", vec!["osd", "dump"], "ceph osd dump: flags, pools, blocklist, stretch mode, OSDs"),
        ];
        if mirrors {
            asks.push((
                "rbd-mirror-pool-status.txt",
                "rbd",
                vec!["mirror", "pool", "status", "--verbose", "rbd"],
                "rbd mirror pool status --verbose (every image)",
            ));
        }
        for (file, program, args, what) in asks {
            match s.cli_within(program, &args, Duration::from_secs(8)).await {
                Ok(out) => {
                    let text = if file == "osd-dump.txt" { osd_dump_parts(&out) } else { out };
                    put(&d, file, &text, what, &mut g);
                }
                Err(e) => {
                    g.missing.push(format!("site {}: {what}: {e}", s.name));
                    // a site that does not answer costs its deadline once
                    break;
                }
            }
        }
    }
    let logs = s.dir.join("log");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&logs).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    for f in files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        let (kept, what) = if name.ends_with(".log") {
            (log_lines_since(&text, since_unix), "its lines over the scenario's span")
        } else {
            (crate::procs::tail(&f, 200), "its last 200 lines (the daemon's own output)")
        };
        put(&d.join("log"), &name, &kept, &format!("site {}'s {name}, {what}", s.name), &mut g);
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_from_a_time_on_with_their_continuations() {
        let since = crate::clock::unix_from_civil(2026, 11, 30, 13, 41, 0.0);
        let text = "2026-11-30T13:40:59.900+0000 7f00 1 old\n  continuation of old\n2026-11-30T13:41:00.100+0000 7f00 1 new\n  continuation of new\n2026-11-30T15:40:02.000+0200 7f00 1 earlier, in another zone\n";
        let kept = log_lines_since(text, since);
        assert_eq!(kept, "2026-11-30T13:41:00.100+0000 7f00 1 new\n  continuation of new\n");
        assert!(log_lines_since("no timestamps at all\n", since).is_empty());
    }

    #[test]
    fn the_osd_dump_parts_a_drill_turns_on() {
        let dump = "epoch 42\nfsid x\ncreated 2026\nflags sortbitwise\npool 1 'rbd' replicated size 2\nmax_osd 2\nosd.0 up in\nblocklist 10.0.0.1:0/1 expires 2026\nstretch_mode_enabled true\n";
        let p = osd_dump_parts(dump);
        assert!(p.contains("flags sortbitwise") && p.contains("pool 1") && p.contains("blocklist") && p.contains("stretch_mode") && p.contains("osd.0"));
        assert!(!p.contains("created") && !p.contains("max_osd"));
    }
}
