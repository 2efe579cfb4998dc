//! Capabilities as data: every sentence of the step vocabulary declares what it needs, and every
//! environment answers what it can do, as a pure function of its file. The runner refuses (a destructive
//! step on an environment not marked disposable) or skips (a need the environment cannot meet, with the
//! reason) from this data before anything starts; nothing matches step text elsewhere. Pure.

use crate::config::{Backend, EnvConfig};
use std::collections::BTreeMap;
use std::fmt;

/// A fault a sentence injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    PowerLoss,
    Freeze,
    StopReplication,
    PauseReplication,
    Isolate,
    Partition,
    Latency,
    PacketLoss,
    RateLimit,
    /// A record damaged on disk through a guest.
    Corrupt,
    /// One storage host of a site lost, the site's other host serving on.
    HostLoss,
}

/// What a sentence needs of the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Destroys or damages something: only on environments marked disposable.
    Destructive,
    Fault(FaultKind),
    /// A relocate that promotes without waiting for the last sync (a negative control).
    RelocateWithoutBarrier,
    /// A failover that neither cuts the lost site off nor fences it at the storage (a negative control).
    FailoverWithoutFencing,
    /// A failover fenced by the harness's isolation alone (a negative control).
    FailoverIsolationOnly,
    /// A failover fenced at the storage alone, the site never cut off.
    FailoverStorageFenceAlone,
    /// The round trip between sites measured.
    RoundTrip,
    /// A site back with its stale copy demoted or left as it is, not resynced (a negative control).
    ComeBackUnrepaired,
    /// A cluster reached by kubeconfig context (the readiness checks of a live namespace).
    LiveCluster,
    /// Ceph's stretch mode (its flags and monitor elections judged).
    StretchMode,
    /// Metro-DR deliberately without stretch mode (a negative control).
    NoStretchMode,
    /// One VM's disk left out of replication (a negative control).
    Unprotect,
    /// VM disks cloned from a golden image, its blocks read back on a site.
    GoldenImage,
    /// A VM of several disks: one machine, a protected image and a writer per disk.
    MultiDisk,
    /// Each disk's snapshots timed on their own (the harness's scheduler on Regional-DR).
    IndependentSnapshots,
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Need::Destructive => "a destructive step",
            Need::Fault(FaultKind::PowerLoss) => "cutting a site's power",
            Need::Fault(FaultKind::Freeze) => "freezing a site",
            Need::Fault(FaultKind::StopReplication) => "stopping replication",
            Need::Fault(FaultKind::PauseReplication) => "pausing replication",
            Need::Fault(FaultKind::Isolate) => "cutting a site off",
            Need::Fault(FaultKind::Partition) => "partitions",
            Need::Fault(FaultKind::Latency) => "inter-site latency",
            Need::Fault(FaultKind::PacketLoss) => "packet loss",
            Need::Fault(FaultKind::RateLimit) => "rate limits",
            Need::Fault(FaultKind::Corrupt) => "damaging a record on disk",
            Need::Fault(FaultKind::HostLoss) => "cutting the power of one storage host",
            Need::RelocateWithoutBarrier => "a relocate without the sync barrier",
            Need::FailoverWithoutFencing => "a failover without fencing",
            Need::FailoverIsolationOnly => "a failover without the storage fence",
            Need::FailoverStorageFenceAlone => "a failover with the storage fence alone",
            Need::RoundTrip => "measuring the inter-site round trip",
            Need::ComeBackUnrepaired => "a site back without the resync or repair",
            Need::LiveCluster => "a live cluster",
            Need::StretchMode => "Metro-DR in Ceph stretch mode",
            Need::NoStretchMode => "Metro-DR without stretch mode (a deliberate misconfiguration)",
            Need::Unprotect => "leaving one VM's disk out of replication",
            Need::GoldenImage => "VM disks cloned from a golden image",
            Need::MultiDisk => "a VM of several disks",
            Need::IndependentSnapshots => "snapshotting each disk on its own",
        };
        f.write_str(s)
    }
}

/// One sentence of the vocabulary: its cucumber expression, exactly as its step definition has it, and
/// what it needs.
pub struct Sentence {
    pub expr: &'static str,
    pub needs: &'static [Need],
}

use FaultKind as F;
use Need as N;

const D: Need = N::Destructive;

/// Every sentence the steps define (a test checks this list against `steps/`).
pub const SENTENCES: &[Sentence] = &[
    Sentence { expr: "a Metro-DR environment with sites {site} and {site}", needs: &[] },
    Sentence { expr: "a Regional-DR environment with sites {site} and {site}", needs: &[] },
    Sentence { expr: "a Regional-DR lab with sites {site} and {site}", needs: &[] },
    Sentence { expr: "a VM writing {int} records per second on site {site}", needs: &[] },
    // the old VM was left on a frozen site, thawed since
    Sentence { expr: "every write the old VM attempts after the fence fails", needs: &[N::Fault(F::Freeze)] },
    Sentence { expr: "namespace {string} of context {string} passes the DR readiness checks", needs: &[N::LiveCluster] },
    Sentence { expr: "no acknowledged write is lost", needs: &[] },
    Sentence { expr: "record {int} of the VM's disk is corrupted on site {site}", needs: &[D, N::Fault(F::Corrupt)] },
    Sentence { expr: "replication to site {site} pauses", needs: &[D, N::Fault(F::PauseReplication)] },
    Sentence { expr: "replication to site {site} resumes", needs: &[N::Fault(F::PauseReplication)] },
    Sentence { expr: "replication to site {site} stops", needs: &[D, N::Fault(F::StopReplication)] },
    Sentence { expr: "site {site} comes back without repair", needs: &[N::ComeBackUnrepaired] },
    Sentence { expr: "site {site} comes back without the resync", needs: &[N::ComeBackUnrepaired] },
    Sentence { expr: "site {site} comes back", needs: &[] },
    Sentence { expr: "site {site} freezes", needs: &[D, N::Fault(F::Freeze)] },
    Sentence { expr: "site {site} is cut off from the other site", needs: &[D, N::Fault(F::Isolate)] },
    Sentence { expr: "site {site} is reconnected", needs: &[N::Fault(F::Isolate)] },
    Sentence { expr: "site {site} is the VM's only primary", needs: &[] },
    Sentence { expr: "site {site} loses power", needs: &[D, N::Fault(F::PowerLoss)] },
    Sentence { expr: "site {site} thaws", needs: &[N::Fault(F::Freeze)] },
    Sentence { expr: "sites {site} and {site} are partitioned", needs: &[D, N::Fault(F::Partition)] },
    Sentence { expr: "sites {site} and {site} are {duration} apart with {duration} of jitter", needs: &[D, N::Fault(F::Latency)] },
    Sentence { expr: "sites {site} and {site} are {duration} apart", needs: &[D, N::Fault(F::Latency)] },
    Sentence { expr: "sites {site} and {site} become {duration} apart", needs: &[D, N::Fault(F::Latency)] },
    Sentence { expr: "the STOP record of the graceful shutdown survives", needs: &[] },
    Sentence { expr: "a Metro-DR environment without stretch mode with sites {site} and {site}", needs: &[N::NoStretchMode] },
    Sentence { expr: "a storage host of site {site} loses power", needs: &[D, N::Fault(F::HostLoss)] },
    Sentence { expr: "the cluster entered degraded stretch mode", needs: &[N::StretchMode] },
    Sentence { expr: "the cluster returns to healthy stretch mode within {duration}", needs: &[N::StretchMode] },
    Sentence { expr: "the VM writes again within {duration} of the partition", needs: &[N::Fault(F::Partition)] },
    Sentence { expr: "the VM has written {int} records", needs: &[] },
    // a failover fences the lost site: the harness cuts it off, the storage blocklists it
    Sentence { expr: "the VM is failed over to site {site} with the storage fence alone", needs: &[D, N::FailoverStorageFenceAlone] },
    Sentence { expr: "the VM is failed over to site {site} without fencing", needs: &[D, N::FailoverWithoutFencing] },
    Sentence { expr: "the VM is failed over to site {site} without the storage fence", needs: &[D, N::FailoverIsolationOnly, N::Fault(F::Isolate)] },
    Sentence { expr: "the VM is failed over to site {site}", needs: &[D, N::Fault(F::Isolate)] },
    Sentence { expr: "the VM is relocated to site {site} without waiting for the sync barrier", needs: &[D, N::RelocateWithoutBarrier] },
    Sentence { expr: "the VM is relocated to site {site}", needs: &[] },
    Sentence { expr: "the VM runs for {duration}", needs: &[] },
    Sentence { expr: "the VM runs for {int} replication intervals", needs: &[] },
    Sentence { expr: "the VM serves again on site {site} within {duration}", needs: &[] },
    Sentence { expr: "the VM's writes so far are replicated to site {site}", needs: &[] },
    Sentence { expr: "the data loss window is at most the replication interval", needs: &[] },
    Sentence { expr: "the link between sites {site} and {site} carries {int} Mbit\\/s", needs: &[D, N::Fault(F::RateLimit)] },
    Sentence { expr: "the manifests in {string} pass the DR readiness checks", needs: &[] },
    Sentence { expr: "the partition between sites {site} and {site} heals", needs: &[N::Fault(F::Partition)] },
    Sentence { expr: "the replication interval is {duration}", needs: &[] },
    Sentence { expr: "the round-trip time between sites {site} and {site} is at most {duration}", needs: &[N::RoundTrip] },
    Sentence { expr: "{float}% of the packets between sites {site} and {site} are lost", needs: &[D, N::Fault(F::PacketLoss)] },
    // an application of many VMs, moved as one
    Sentence { expr: "{int} VMs writing {int} records per second on site {site}", needs: &[] },
    Sentence { expr: "the VMs run for {duration}", needs: &[] },
    Sentence { expr: "the VMs run for {int} replication intervals", needs: &[] },
    Sentence { expr: "the VMs' writes so far are replicated to site {site}", needs: &[] },
    Sentence { expr: "{int} VMs writing {int} records per second on site {site}, VM {int} left out of mirroring", needs: &[D, N::Unprotect] },
    Sentence { expr: "the VMs are failed over to site {site}", needs: &[D, N::Fault(F::Isolate)] },
    Sentence { expr: "the VMs are relocated to site {site}", needs: &[] },
    Sentence { expr: "the VMs serve again on site {site} within {duration}", needs: &[] },
    Sentence { expr: "site {site} is every VM's only primary", needs: &[] },
    // disks cloned from a golden image (CDI clones)
    Sentence { expr: "a VM cloned from a golden image writing {int} records per second on site {site}", needs: &[N::GoldenImage] },
    Sentence { expr: "the golden image's data is intact", needs: &[N::GoldenImage] },
    // a VM of several disks
    Sentence { expr: "a VM with {int} disks writing {int} records per second on site {site}", needs: &[N::MultiDisk] },
    Sentence {
        expr: "a VM with {int} disks writing {int} records per second on site {site}, each disk snapshotted on its own",
        needs: &[N::MultiDisk, N::IndependentSnapshots],
    },
    Sentence { expr: "the VM's disks are at most {duration} apart after the failover", needs: &[N::MultiDisk] },
];

/// The regex of a cucumber expression as the steps use them (parameters `{site}`, `{int}`, `{float}`,
/// `{string}`, `{duration}`; `\/` an escaped slash), anchored.
fn regex_of(expr: &str) -> regex::Regex {
    let mut out = String::from("^");
    let mut rest = expr.replace("\\/", "/");
    while let Some(i) = rest.find('{') {
        out.push_str(&regex::escape(&rest[..i]));
        let j = rest[i..].find('}').map(|j| i + j).expect("a parameter closes");
        out.push_str(match &rest[i + 1..j] {
            "site" => "[a-z0-9]+",
            "int" => r"-?\d+",
            "float" => r"-?\d+(?:\.\d+)?",
            "string" => "\"[^\"]*\"",
            "duration" => r"\d+(?:\.\d+)?(?:ms|s|m|h)(?:\d+(?:\.\d+)?(?:ms|s|m|h))*",
            p => panic!("unknown parameter {{{p}}} in {expr:?}"),
        });
        rest = rest[j + 1..].to_string();
    }
    out.push_str(&regex::escape(&rest));
    out.push('$');
    regex::Regex::new(&out).expect("a valid regex")
}

/// The sentence a step's text is (the text as written after its keyword).
pub fn sentence_of(step: &str) -> Option<&'static Sentence> {
    use std::sync::OnceLock;
    static COMPILED: OnceLock<Vec<regex::Regex>> = OnceLock::new();
    let rs = COMPILED.get_or_init(|| SENTENCES.iter().map(|s| regex_of(s.expr)).collect());
    SENTENCES.iter().zip(rs).find(|(_, r)| r.is_match(step)).map(|(s, _)| s)
}

/// What a step needs (nothing for a text no sentence has: the feature loader refuses those first).
pub fn needs_of(step: &str) -> &'static [Need] {
    sentence_of(step).map(|s| s.needs).unwrap_or(&[])
}

/// What an environment cannot do, each with why: a pure function of its file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Capabilities {
    lacks: BTreeMap<Need, String>,
}

impl Capabilities {
    pub fn of(cfg: &EnvConfig) -> Capabilities {
        let (env, backend) = (&cfg.spec.name, cfg.spec.backend_name());
        let mut lacks = BTreeMap::new();
        let mut lack = |n: Need, why: String| {
            lacks.entry(n).or_insert(why);
        };
        let lab_only = [
            N::Fault(F::HostLoss),
            N::Fault(F::StopReplication),
            N::Fault(F::PauseReplication),
            N::Fault(F::Partition),
            N::Fault(F::Corrupt),
            N::RoundTrip,
            N::RelocateWithoutBarrier,
            N::FailoverWithoutFencing,
            N::FailoverIsolationOnly,
            N::FailoverStorageFenceAlone,
        ];
        // stretch mode is the lab's Metro-DR (the simulation models Metro-DR without it; clusters are not asked)
        let metro = cfg.spec.metro();
        let stretch = metro.is_some_and(|m| m.stretch_mode) && matches!(cfg.spec.backend, Backend::Lab(_));
        if !stretch {
            let why = match metro {
                None => format!("environment {env} is not Metro-DR: run with --env environments/lab-metro.yaml"),
                Some(m) if !m.stretch_mode => format!("environment {env} runs Metro-DR without stretch mode (stretchMode: false)"),
                Some(_) => format!("stretch mode is judged on the lab only; environment {env} is {backend}"),
            };
            lack(N::StretchMode, why);
        }
        if !(metro.is_some_and(|m| !m.stretch_mode) && matches!(cfg.spec.backend, Backend::Lab(_))) {
            lack(
                N::NoStretchMode,
                format!("a negative control on the lab's Metro-DR layout without stretch mode: run with --env environments/lab-metro-no-stretch.yaml (environment {env} is not)"),
            );
        }
        // leaving one image out of mirroring: the lab's and the simulation's Regional-DR drivers
        if cfg.spec.regional().is_none() || !matches!(cfg.spec.backend, Backend::Lab(_) | Backend::Sim(_)) {
            lack(
                N::Unprotect,
                format!(
                    "{} is a negative control on Regional-DR mirroring in the lab or the simulation; environment {env} is {backend} ({})",
                    N::Unprotect,
                    cfg.replication_summary()
                ),
            );
        }
        // golden-image clones: the lab's Regional-DR driver (RBD clones of a mirrored parent) and the simulation
        let golden = match &cfg.spec.backend {
            Backend::Lab(_) => cfg.spec.regional().is_some(),
            Backend::Sim(_) => true,
            _ => false,
        };
        if !golden {
            lack(
                N::GoldenImage,
                format!(
                    "{} are made and read back by the lab's Regional-DR driver and the simulation: run with --env environments/lab-regional.yaml; environment {env} is {backend} ({})",
                    N::GoldenImage,
                    cfg.replication_summary()
                ),
            );
        }
        // a VM of several disks: the lab's QEMU boots one machine with a drive per disk; the simulation boots
        // a writer per disk; a KubeVirt VM of several DataVolumes is not built by the Kubernetes drivers yet
        if !matches!(cfg.spec.backend, Backend::Lab(_) | Backend::Sim(_)) {
            lack(N::MultiDisk, format!("{} is booted by the lab and the simulation only; environment {env} is {backend}", N::MultiDisk));
        }
        let harness_rounds = cfg.spec.regional().is_some_and(|r| r.scheduler == crate::config::Scheduler::Harness);
        if !(harness_rounds && matches!(cfg.spec.backend, Backend::Lab(_) | Backend::Sim(_))) {
            lack(
                N::IndependentSnapshots,
                format!(
                    "{} needs the harness's snapshot rounds (Regional-DR, `scheduler: harness`) in the lab or the simulation; environment {env} is {backend} ({})",
                    N::IndependentSnapshots,
                    cfg.replication_summary()
                ),
            );
        }
        match &cfg.spec.backend {
            Backend::Lab(_) => {}
            // the simulation's storage has no hosts: a site is one failure domain
            Backend::Sim(_) => lack(N::Fault(F::HostLoss), format!("{} is a lab-only fault; environment {env} is {backend}", N::Fault(F::HostLoss))),
            Backend::Kind(_) => {
                for n in lab_only.into_iter().filter(|n| *n != N::Fault(F::Corrupt)) {
                    lack(n, format!("{n} is a lab-only fault; environment {env} is {backend}"));
                }
            }
            Backend::Existing(x) => {
                for n in lab_only.into_iter().filter(|n| *n != N::Fault(F::Corrupt)) {
                    lack(n, format!("{n} is a lab-only fault; environment {env} is {backend}"));
                }
                for n in [N::Fault(F::Latency), N::Fault(F::PacketLoss), N::Fault(F::RateLimit)] {
                    lack(n, format!("{n} cannot be caused on existing clusters; environment {env} is {backend}"));
                }
                lack(N::Fault(F::Freeze), format!("freezing a site is not possible on existing clusters; environment {env} is {backend}"));
                for (n, key) in [(N::Fault(F::PowerLoss), "powerLoss"), (N::Fault(F::Isolate), "isolate")] {
                    if !x.commands.contains_key(key) {
                        lack(n, format!("environment {env} names no `commands.{key}` for {n} (a failover fences the lost site by cutting it off)"));
                    }
                }
                if x.hub.is_some() {
                    lack(
                        N::ComeBackUnrepaired,
                        format!(
                            "Ramen always resyncs a returned cluster: {} is a lab-only negative control; environment {env} protects through a hub",
                            N::ComeBackUnrepaired
                        ),
                    );
                }
            }
        }
        Capabilities { lacks }
    }

    /// Why the environment cannot meet `need`, if it cannot.
    pub fn why_not(&self, need: Need) -> Option<&str> {
        self.lacks.get(&need).map(String::as_str)
    }

    /// The first need of `steps` the environment cannot meet, with why.
    pub fn first_missing<'a>(&self, steps: impl IntoIterator<Item = &'a str>) -> Option<String> {
        steps.into_iter().flat_map(needs_of).find_map(|n| self.why_not(*n).map(String::from))
    }
}

/// Does the step destroy or damage something?
pub fn is_destructive(step: &str) -> bool {
    needs_of(step).contains(&N::Destructive)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step definition in `steps/` has its sentence here, with the same expression, and no other.
    #[test]
    fn every_step_declares_its_needs() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("steps");
        let re = regex::Regex::new(r#"#\[(?:given|when|then)\((?:expr = )?"((?:[^"\\]|\\.)*)"\)\]"#).unwrap();
        let mut defined = std::collections::BTreeSet::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap();
            for c in re.captures_iter(&text) {
                defined.insert(c[1].replace("\\\\", "\\"));
            }
        }
        let declared: std::collections::BTreeSet<String> = SENTENCES.iter().map(|s| s.expr.to_string()).collect();
        assert_eq!(declared.len(), SENTENCES.len(), "a sentence is declared twice");
        assert_eq!(defined, declared, "steps/ and capability::SENTENCES differ");
    }

    /// Every step of every bundled feature is exactly one sentence.
    #[test]
    fn every_bundled_step_is_one_sentence() {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("features");
        let files = crate::runner::feature_files(&[base]).unwrap();
        let mut n = 0;
        for f in crate::runner::load_features(&files).unwrap() {
            for s in f.scenarios.iter().chain(f.rules.iter().flat_map(|r| r.scenarios.iter())) {
                for st in &s.steps {
                    let hits = SENTENCES.iter().filter(|x| regex_of(x.expr).is_match(&st.value)).count();
                    assert_eq!(hits, 1, "{:?}: {}", f.path, st.value);
                    n += 1;
                }
            }
        }
        assert!(n > 100);
    }

    #[test]
    fn needs_and_capabilities() {
        assert!(is_destructive("site a loses power"));
        assert!(is_destructive("the VM is failed over to site b without fencing"));
        assert!(!is_destructive("the VM is relocated to site b"));
        assert!(!is_destructive("the round-trip time between sites a and b is at most 10ms"));
        assert_eq!(needs_of("the link between sites a and b carries 10 Mbit/s"), &[D, N::Fault(F::RateLimit)]);
        let cfg = |backend: &str| {
            crate::config::from_yaml(std::path::Path::new("e.yaml"), &format!("name: e\nbackend:\n{backend}\ndisposable: true\nsites:\n  - name: a\n  - name: b\nreplication:\n  regional:\n    interval: 1m\n    scheduler: ceph\n")).unwrap()
        };
        let lab = Capabilities::of(&cfg("  lab: {}"));
        assert!(lab.why_not(N::StretchMode).unwrap().contains("not Metro-DR"));
        assert_eq!(lab.first_missing(["site a loses power", "a storage host of site a loses power", "sites a and b are partitioned"]), None);
        let x = Capabilities::of(&cfg("  existing:\n    contexts: {a: ca, b: cb}\n    volumeReplicationClass: vrc\n    storageClass: sc\n    probeImage: p:1"));
        assert!(x.why_not(N::Fault(F::PowerLoss)).unwrap().contains("commands.powerLoss"));
        assert!(x.why_not(N::Fault(F::Freeze)).unwrap().contains("freezing a site is not possible"));
        assert!(x.first_missing(["site a loses power"]).is_some());
        assert_eq!(x.first_missing(["the VM is relocated to site b"]), None);
    }
}
