//! The inputs dr-drill reads from outside, as fuzz targets: any bytes in, no panic, and every rejection
//! one line that names the input. Each target returns `Err` with what broke that rule (a fuzzer or a
//! property test turns it into a failure; a panic is one by itself). Driven by `tests/fuzz.rs` (property
//! tests over arbitrary and mutated bytes: the bounded run in CI) and by the coverage-guided targets in
//! `fuzz/` (cargo-fuzz, libFuzzer).

use std::path::Path;

/// The name every target gives its input: a rejection must name it.
pub const INPUT: &str = "fuzz-input";

/// A rejection must be one line and name the input.
fn one_line_naming(msg: &str, name: &str) -> Result<(), String> {
    if msg.contains('\n') {
        return Err(format!("a rejection over several lines: {msg:?}"));
    }
    if !msg.contains(name) {
        return Err(format!("a rejection that does not name {name}: {msg:?}"));
    }
    Ok(())
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// An environment file (`--env`).
pub fn env_file(data: &[u8]) -> Result<(), String> {
    let name = format!("{INPUT}.yaml");
    match crate::config::from_yaml(Path::new(&name), &text(data)) {
        Ok(cfg) => {
            // what was accepted can be described (every report does)
            let _ = cfg.replication_summary();
            Ok(())
        }
        Err(e) => one_line_naming(&e.to_string(), &name),
    }
}

/// A feature file, checked sentence by sentence against the steps (the pre-run gate). The bytes are
/// written to a file in `dir` first: the gate reads files.
pub fn feature_file(data: &[u8], dir: &Path) -> Result<(), String> {
    let path = dir.join(format!("{INPUT}.feature"));
    std::fs::write(&path, data).map_err(|e| format!("cannot write the input: {e}"))?;
    match crate::runner::load_features(std::slice::from_ref(&path)) {
        Ok(_) => Ok(()),
        Err(e) => one_line_naming(&e.to_string(), &path.display().to_string()),
    }
}

/// A block of the probe's disk (any 4 KiB: the guest's crash recovery reads whatever is there), and the
/// block's record re-encoded decodes to itself.
pub fn probe_block(data: &[u8]) -> Result<(), String> {
    let mut b = vec![0u8; dr_probe::BLOCK];
    let n = data.len().min(dr_probe::BLOCK);
    b[..n].copy_from_slice(&data[..n]);
    let block = data.get(dr_probe::BLOCK..dr_probe::BLOCK + 8).map(|x| u64::from_le_bytes(x.try_into().unwrap_or_default())).unwrap_or(1);
    if let dr_probe::Block::Valid { record, hash } = dr_probe::decode(block, &b) {
        let mut again = vec![0u8; dr_probe::BLOCK];
        let h = dr_probe::encode(&record, &mut again);
        if h != hash || again != b {
            return Err(format!("block {block}: a valid record re-encodes differently"));
        }
    }
    Ok(())
}

/// Lines from the probe on the serial console (acknowledgements, scan results), split as the witness
/// reads them: whatever a line parses to prints back as one line that parses to the same.
pub fn probe_line(data: &[u8]) -> Result<(), String> {
    for line in text(data).lines() {
        probe_one_line(line)?;
    }
    Ok(())
}

fn probe_one_line(line: &str) -> Result<(), String> {
    if let Some(m) = dr_probe::Msg::parse(line) {
        let printed = m.to_string();
        if printed.contains('\n') {
            return Err(format!("{m:?} prints over several lines"));
        }
        if dr_probe::Msg::parse(&printed).as_ref() != Some(&m) {
            return Err(format!("{line:?} parses to {m:?}, which prints as {printed:?} and parses back differently"));
        }
    }
    Ok(())
}

/// A stream of Kubernetes manifests for `dr-drill lint`.
pub fn lint_manifest(data: &[u8]) -> Result<(), String> {
    let name = format!("{INPUT}.yaml");
    match crate::lint::parse_stream(&name, &text(data)) {
        Ok(objects) => {
            // and the rules run over whatever was read, both ways
            let _ = crate::lint::rules::check(&objects, false, &crate::lint::rules::Options::default());
            let metro = crate::lint::rules::Options { dr: crate::lint::rules::DrKind::Metro, ..Default::default() };
            let _ = crate::lint::rules::check(&objects, true, &metro);
            Ok(())
        }
        Err(e) => one_line_naming(&e.to_string(), &name),
    }
}

/// A run's folder as `dr-drill report DIR` reads it: `data` split at its first NUL into summary.json and
/// one VM's history; read, then rendered (page and Jepsen history) whatever it holds.
pub fn run_folder(data: &[u8], dir: &Path) -> Result<(), String> {
    let cut = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let (summary, history) = (&data[..cut], data.get(cut + 1..).unwrap_or(&[]));
    std::fs::write(dir.join("summary.json"), summary).map_err(|e| format!("cannot write the input: {e}"))?;
    std::fs::write(dir.join("history-vm0.jsonl"), history).map_err(|e| format!("cannot write the input: {e}"))?;
    match crate::evidence::read_run(dir) {
        Ok((summary, histories)) => {
            let _ = crate::html::render_run(&summary, &histories);
            for events in histories.values() {
                let _ = crate::jepsen::history(events);
            }
            let _ = crate::campaign::campaign(&[(1, summary)], "fuzz");
            Ok(())
        }
        Err(e) => one_line_naming(&e.to_string(), &dir.display().to_string()),
    }
}
