//! The bounded fuzz run CI makes: every input dr-drill reads from outside (environment files, feature
//! files, the probe's blocks and console lines, Kubernetes manifests for lint, a run's summary and
//! histories for `report`) fed arbitrary bytes and mutations of the real files in this repository, through
//! the targets of `dr_drill::fuzz` (the same the coverage-guided fuzzers in `fuzz/` drive). No panic on any
//! input; every rejection one line naming the input. Inputs that once broke a rule are kept below as
//! regression cases. `PROPTEST_CASES` runs longer.

use dr_drill::fuzz;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The files of `dir` (under the repository) whose names end with `ext`: the mutation seeds.
fn seeds(dirs: &[&str], ext: &str) -> Vec<Vec<u8>> {
    let mut out = vec![];
    for d in dirs {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(root().join(d)).unwrap().flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(ext)).collect();
        files.sort();
        out.extend(files.iter().map(|f| std::fs::read(f).unwrap()));
    }
    assert!(!out.is_empty(), "no seeds in {dirs:?}");
    out
}

/// One edit of a seed: at a position (scaled to its length), insert, delete, replace a byte, or repeat a
/// slice (a duplicated key, a duplicated step).
#[derive(Clone, Debug)]
enum Edit {
    Insert(u16, u8),
    Delete(u16, u8),
    Replace(u16, u8),
    Repeat(u16, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<u16>(), any::<u8>()).prop_map(|(p, b)| Edit::Insert(p, b)),
        (any::<u16>(), any::<u8>()).prop_map(|(p, n)| Edit::Delete(p, n)),
        (any::<u16>(), prop_oneof![any::<u8>(), Just(b':'), Just(b'\n'), Just(b' '), Just(b'-'), Just(b'#'), Just(b'"'), Just(b'|')])
            .prop_map(|(p, b)| Edit::Replace(p, b)),
        (any::<u16>(), any::<u8>()).prop_map(|(p, n)| Edit::Repeat(p, n)),
    ]
}

fn mutate(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for e in edits {
        let at = |p: u16, len: usize| if len == 0 { 0 } else { p as usize * len / (u16::MAX as usize + 1) };
        match *e {
            Edit::Insert(p, b) => {
                let i = at(p, v.len() + 1);
                v.insert(i, b);
            }
            Edit::Delete(p, n) if !v.is_empty() => {
                let i = at(p, v.len());
                let end = (i + n as usize % 64 + 1).min(v.len());
                v.drain(i..end);
            }
            Edit::Replace(p, b) if !v.is_empty() => {
                let i = at(p, v.len());
                v[i] = b;
            }
            Edit::Repeat(p, n) if !v.is_empty() => {
                let i = at(p, v.len());
                let end = (i + n as usize + 1).min(v.len());
                let slice = v[i..end].to_vec();
                v.splice(end..end, slice);
            }
            _ => {}
        }
    }
    v
}

/// Arbitrary bytes, or a seed with up to 8 edits.
fn input(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..2048),
        3 => (0..n, proptest::collection::vec(edit(), 1..8)).prop_map(move |(i, e)| mutate(&seeds[i], &e)),
    ]
}

fn cases(n: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(n);
    ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(cases(3000))]
    #[test]
    fn an_environment_file_never_panics_and_is_refused_in_one_line(data in input(seeds(&["environments", "tests/fixtures"], ".yaml"))) {
        fuzz::env_file(&data).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn a_probe_line_parses_to_what_it_prints(data in input(vec![b"ACK 12 1700000000000000000 812".to_vec(), b"RANGE 1 90 00000000deadbeef".to_vec(), b"CORRUPT 50 bad-payload-checksum".to_vec(), b"HELLO 0123456789abcdef0123456789abcdef write".to_vec(), b"SCANEND".to_vec(), b"ERR disk full".to_vec()])) {
        fuzz::probe_line(&data).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn a_probe_block_of_any_bytes_decodes_without_panic(data in proptest::collection::vec(any::<u8>(), 0..4200)) {
        fuzz::probe_block(&data).map_err(TestCaseError::fail)?;
    }
}

proptest! {
    #![proptest_config(cases(1500))]
    #[test]
    fn a_manifest_stream_never_panics_and_is_refused_in_one_line(data in input(seeds(&["tests/fixtures/lint", "tests/fixtures/crds"], ".yaml"))) {
        fuzz::lint_manifest(&data).map_err(TestCaseError::fail)?;
    }
}

proptest! {
    #![proptest_config(cases(400))]
    #[test]
    fn a_feature_file_never_panics_and_is_refused_in_one_line(data in input(seeds(&["features", "features/negative"], ".feature"))) {
        let dir = tempfile::tempdir().unwrap();
        fuzz::feature_file(&data, dir.path()).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn a_run_folder_never_panics_the_report(data in input(vec![{
        let mut v = std::fs::read(root().join("tests/fixtures/report/lab-failover/summary.json")).unwrap();
        v.push(0);
        // the history's first 200 lines: enough for every kind of event
        let h = std::fs::read_to_string(root().join("tests/fixtures/report/lab-failover/history-vm0.jsonl")).unwrap();
        v.extend(h.lines().take(200).collect::<Vec<_>>().join("\n").into_bytes());
        v
    }])) {
        let dir = tempfile::tempdir().unwrap();
        fuzz::run_folder(&data, dir.path()).map_err(TestCaseError::fail)?;
    }
}

/// Inputs that broke a rule once, kept.
#[test]
fn regressions() {
    let dir = tempfile::tempdir().unwrap();
    for (what, data) in REGRESSIONS {
        let r = match *what {
            "env" => fuzz::env_file(data),
            "line" => fuzz::probe_line(data),
            "block" => fuzz::probe_block(data),
            "lint" => fuzz::lint_manifest(data),
            "feature" => fuzz::feature_file(data, dir.path()),
            "run" => fuzz::run_folder(data, dir.path()),
            other => panic!("unknown target {other}"),
        };
        assert_eq!(r, Ok(()), "{what}: {:?}", String::from_utf8_lossy(data));
    }
}

/// ("line", "ERR \\nisk full"): a console line holding a line break (the property first fed whole inputs as
/// one line; the witness splits lines first, as the target now does).
const REGRESSIONS: &[(&str, &[u8])] = &[("env", b""), ("line", b""), ("line", b"ERR \nisk full")];
