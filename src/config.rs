//! The environment file: strict YAML (unknown keys refused, durations as text like `30s`), parsed by a pure
//! function. `load` is the only I/O.

use crate::units::{ByteSize, Dur};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors of reading an environment file; each names the file and, where known, the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read environment file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {msg}")]
    Invalid { path: PathBuf, line: u64, msg: String },
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvFile {
    pub name: String,
    /// Where the sites run, with the fields only that backend has.
    pub backend: Backend,
    /// Destructive steps (power loss, forced promote) refuse to run unless this is true.
    pub disposable: bool,
    pub sites: Vec<SiteSpec>,
    /// How the sites' storage replicates, with the fields only that mode has.
    pub replication: Replication,
    #[serde(default)]
    pub vm: VmSpec,
    #[serde(default)]
    pub budgets: Budgets,
}

/// The backend, a tagged variant: `backend: { lab: { ... } }`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum Backend {
    /// Embedded: network-namespace sites with real Ceph, rbd-mirror and QEMU on this machine.
    Lab(LabSpec),
    /// Two kind clusters made by `env up`: KubeVirt, CDI, Rook-Ceph with RBD mirroring, csi-addons.
    Kind(KindSpec),
    /// The user's own clusters, by kubeconfig context (OpenShift with RHACM, ODF and Ramen, or any two
    /// clusters with KubeVirt and csi-addons VolumeReplication).
    Existing(ExistingSpec),
    /// Every port in memory on a simulated clock: sites, storage (Regional-DR snapshot mirroring or Metro-DR
    /// synchronous replicas) and a probe guest. A test tier and a user feature (a drill in milliseconds),
    /// never a substitute for the lab.
    Sim(SimSpec),
}

/// Simulated-environment settings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SimSpec {
    /// Seeds everything random in the simulation (sync and boot times, boot ids): a run is replayed from it
    /// (`dr-drill run --seed N` overrides it).
    #[serde(default)]
    pub seed: u64,
    /// How long a mirror snapshot takes to complete on the peer: drawn uniformly between these two.
    #[serde(default = "SimSpec::d_sync_min")]
    pub sync_time_min: Dur,
    #[serde(default = "SimSpec::d_sync_max")]
    pub sync_time_max: Dur,
    /// How long a VM takes to boot (to its probe's HELLO).
    #[serde(default = "SimSpec::d_boot")]
    pub boot_time: Dur,
    #[serde(default = "LabSpec::default_disk")]
    pub disk_size: ByteSize,
    /// Storage that lies, on purpose: the harness's own negative controls (every drill it applies to must
    /// fail, naming what it saw).
    #[serde(default)]
    pub misbehave: Vec<Misbehaviour>,
}

impl SimSpec {
    fn d_sync_min() -> Dur {
        Dur(Duration::from_millis(300))
    }
    fn d_sync_max() -> Dur {
        Dur(Duration::from_millis(1500))
    }
    fn d_boot() -> Dur {
        Dur(Duration::from_secs(2))
    }
    /// Records the disk holds (block 0 is never used).
    pub fn disk_records(&self) -> u64 {
        self.disk_size.0 / 4096 - 1
    }
}

/// Ways real DR storage has lied, each switchable in the simulated storage.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Misbehaviour {
    /// Acknowledges a write it never persisted (every 7th write to a disk).
    AckUnpersisted,
    /// Marks a mirror snapshot complete on the peer while the data there is older (Ceph PR 46454).
    SnapshotCompleteEarly,
    /// A forced promote rolls the image back to the snapshot before the newest complete one (Ceph tracker
    /// 53537).
    PromoteRollsBack,
    /// The peer's copy loses the data its image shares with a parent (the first 32 records: tracker 61891).
    CloneLosesParent,
    /// Reports a replication status one snapshot ahead of the data the peer holds (Ramen issue 2811).
    StatusAhead,
    /// The demotion of a force-promoted copy reports success and leaves it primary: two primaries after
    /// a failback.
    TwoPrimaries,
    /// The storage fence (blocklist) lets the fenced site's clients keep writing.
    FencedClientWrites,
    /// Not the storage but the fault surface: it reports every fault caused and changes nothing (as chaos
    /// tools have: Chaos Mesh issues 4903, 4948). The harness must refuse to go on (exit 2), never judge a
    /// DR action after a fault that did not land.
    FaultNotApplied,
}

impl Misbehaviour {
    pub const ALL: [Misbehaviour; 8] = [
        Misbehaviour::AckUnpersisted,
        Misbehaviour::SnapshotCompleteEarly,
        Misbehaviour::PromoteRollsBack,
        Misbehaviour::CloneLosesParent,
        Misbehaviour::StatusAhead,
        Misbehaviour::TwoPrimaries,
        Misbehaviour::FencedClientWrites,
        Misbehaviour::FaultNotApplied,
    ];
}

/// The guest on a Kubernetes backend: a KubeVirt VirtualMachine whose data disk is a block-mode volume on
/// the mirrored storage class.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Guest {
    /// Namespace of the VM and its resources on every cluster.
    #[serde(default = "Guest::default_namespace")]
    pub namespace: String,
    #[serde(default = "LabSpec::default_memory")]
    pub memory: ByteSize,
    #[serde(default = "LabSpec::default_disk")]
    pub disk_size: ByteSize,
    /// The label every resource of the VM's application carries (discovered applications), key and value
    /// prefix; VMIs and pods are never labelled.
    #[serde(default = "Guest::default_label")]
    pub app_label: String,
}

impl Guest {
    fn default_namespace() -> String {
        "dr-drill".into()
    }
    fn default_label() -> String {
        "app.kubernetes.io/part-of".into()
    }
}

impl Default for Guest {
    fn default() -> Self {
        Guest { namespace: Self::default_namespace(), memory: LabSpec::default_memory(), disk_size: LabSpec::default_disk(), app_label: Self::default_label() }
    }
}

/// kind-only settings. Versions are pinned in the harness (`dr-drill env up --dry-run` prints them); the
/// node image may be overridden (pinned by digest).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KindSpec {
    /// Node image, `name:tag@sha256:digest` (default: the pinned one).
    #[serde(default)]
    pub node_image: Option<String>,
    /// The loop device each site's OSD uses, by site name: created by `env up` at exactly that name over a
    /// sparse file, refused if it is already in use. Nothing else is ever given to Ceph (never
    /// `useAllDevices`).
    pub osd_devices: std::collections::BTreeMap<String, PathBuf>,
    #[serde(default = "KindSpec::default_osd_size")]
    pub osd_size: ByteSize,
    /// Where the OSD files and the state of `env up` are kept.
    #[serde(default = "KindSpec::default_work_dir")]
    pub work_dir: PathBuf,
    /// The docker network kind puts its nodes on.
    #[serde(default = "KindSpec::default_network")]
    pub network: String,
    /// KubeVirt's software emulation: `true` always, `false` never; unset: when there is no /dev/kvm (some
    /// hosts have a /dev/kvm that opens but runs no guest: say `true` there).
    #[serde(default)]
    pub emulation: Option<bool>,
    #[serde(default)]
    pub guest: Guest,
}

impl KindSpec {
    fn default_osd_size() -> ByteSize {
        ByteSize(10 << 30)
    }
    fn default_work_dir() -> PathBuf {
        PathBuf::from("/var/lib/dr-drill/kind")
    }
    fn default_network() -> String {
        "kind".into()
    }
}

/// Existing clusters: read-only unless `disposable: true` and the command line confirms.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExistingSpec {
    /// Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context of each site, by site name.
    pub contexts: std::collections::BTreeMap<String, String>,
    /// The RHACM hub's context: DR actions go through Ramen's DRPlacementControl there. Without it they
    /// flip csi-addons VolumeReplication on the managed clusters.
    #[serde(default)]
    pub hub: Option<HubSpec>,
    /// The storage class of the VM's disk (mirrored, block mode).
    pub storage_class: String,
    /// VolumeReplicationClass (without a hub).
    #[serde(default)]
    pub volume_replication_class: Option<String>,
    /// The kernel-boot image holding the probe, pushed to a registry the clusters pull from.
    pub probe_image: String,
    /// Operator-supplied commands for faults the harness cannot cause itself, by fault, run with
    /// `sh -c` and `DR_DRILL_SITE` / `DR_DRILL_CONTEXT` set: `powerLoss`, `restore`, `isolate`, `reconnect`.
    #[serde(default)]
    pub commands: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub guest: Guest,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HubSpec {
    pub context: String,
    /// Namespace of the DRPlacementControls.
    pub namespace: String,
    /// Managed cluster name of each site, by site name (default: the site's context).
    #[serde(default)]
    pub clusters: std::collections::BTreeMap<String, String>,
    /// The DRPolicy the VMs are protected by.
    pub dr_policy: String,
    /// Where the application's VolumeReplicationGroup is on the managed clusters (default: the VM's
    /// namespace; discovered applications: Ramen's operations namespace, e.g. `openshift-dr-ops`).
    #[serde(default)]
    pub vrg_namespace: Option<String>,
}

/// Fault commands an existing environment may name.
pub const EXISTING_COMMANDS: &[&str] = &["powerLoss", "restore", "isolate", "reconnect"];

/// Lab-only settings: the QEMU guest.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabSpec {
    #[serde(default = "LabSpec::default_memory")]
    pub memory: ByteSize,
    /// Size of the VM disk (the mirrored RBD image); the record ring must not wrap during a drill.
    #[serde(default = "LabSpec::default_disk")]
    pub disk_size: ByteSize,
}

impl LabSpec {
    fn default_memory() -> ByteSize {
        ByteSize(128 << 20)
    }
    fn default_disk() -> ByteSize {
        ByteSize(64 << 20)
    }
    /// Records the disk holds (block 0 is never used).
    pub fn disk_records(&self) -> u64 {
        self.disk_size.0 / 4096 - 1
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SiteSpec {
    pub name: String,
}

/// The replication mode, a tagged variant: `replication: { regional: { ... } }`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum Replication {
    /// Asynchronous RBD snapshot mirroring between two clusters.
    Regional(Regional),
    /// Synchronous: one Ceph cluster stretched over the two sites and an arbiter.
    Metro(Metro),
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metro {
    /// The third failure domain: a tie-breaking monitor, no data.
    pub arbiter: String,
    /// Metro-DR is supported only with the data sites at most this far apart (round trip): measured before
    /// any drill, and a larger figure fails the run.
    #[serde(default = "Metro::default_max_rtt")]
    pub max_rtt: Dur,
    /// Where the replicas go (the lab builds the CRUSH rule from it): one per data site, or, as a
    /// misconfiguration for negative controls, every replica on the first site.
    #[serde(default)]
    pub placement: Placement,
    /// Ceph's stretch mode (the default, as OpenShift Data Foundation's Metro-DR runs it): two monitors and
    /// two OSD hosts per data site, the arbiter a tiebreaker monitor, pools of 4 replicas (2 per site,
    /// min_size 2), connectivity elections; a data site lost or cut off from the other, the cluster goes on
    /// with one site (degraded stretch mode) and heals itself when it comes back. `false` is the older
    /// layout without stretch mode (a replica per site, size 2, min_size 1): a deliberate
    /// misconfiguration, for the negative control it fails (a partition between the data sites).
    #[serde(default = "Metro::default_stretch")]
    pub stretch_mode: bool,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Placement {
    /// One replica in each data site: either site can serve alone.
    #[default]
    PerSite,
    /// Every replica in the first data site (a CRUSH rule rooted there): a misconfiguration that loses the
    /// disk with that site. Only for negative controls.
    FirstSiteOnly,
}

impl Metro {
    fn default_stretch() -> bool {
        true
    }

    fn default_max_rtt() -> Dur {
        Dur(Duration::from_millis(10))
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Regional {
    pub interval: Dur,
    pub scheduler: Scheduler,
    /// How long a mirror snapshot may take to complete on the peer. Declared, never measured: the
    /// Regional-DR bound is interval + this + one write period, and a snapshot that takes longer fails the
    /// drill ("replication lagged"). Default: one interval, which is also the most it may be.
    #[serde(default)]
    pub sync_allowance: Option<Dur>,
}

impl Regional {
    /// The sync allowance in force (declared, or the default of one interval).
    pub fn allowance(&self) -> Duration {
        self.sync_allowance.map(|d| d.0).unwrap_or(self.interval.0)
    }
    /// How long the first replication round of a newly protected disk may take to complete (the warm-up,
    /// not judged as lag): one interval plus the allowance when the harness asks for the rounds itself; two
    /// intervals plus the allowance for a schedule it does not drive (Ceph's own fired a new image's first
    /// snapshot 89 s after a 1-minute schedule was added here).
    pub fn warmup(&self) -> Duration {
        warmup(self.scheduler, self.interval.0, self.allowance())
    }
}

/// See [`Regional::warmup`]. Pure.
pub fn warmup(scheduler: Scheduler, interval: Duration, allowance: Duration) -> Duration {
    match scheduler {
        Scheduler::Harness => interval + allowance,
        Scheduler::Ceph | Scheduler::Storage => interval * 2 + allowance,
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Scheduler {
    /// The harness issues `rbd mirror image snapshot` itself every interval (any interval from 1s).
    Harness,
    /// Ceph's own `rbd mirror snapshot schedule` (whole minutes, 1m at least).
    Ceph,
    /// Existing clusters: the storage's own schedule, whatever it is (the VolumeReplicationClass's
    /// `schedulingInterval`); the interval declared here is the promise the drill holds it to.
    Storage,
}

/// The VM's workload, whatever runs it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VmSpec {
    /// Records per second the probe writes.
    #[serde(default = "VmSpec::default_rate")]
    pub write_rate: u32,
}

impl VmSpec {
    fn default_rate() -> u32 {
        50
    }
}

impl Default for VmSpec {
    fn default() -> Self {
        VmSpec { write_rate: Self::default_rate() }
    }
}

/// Deadlines: every wait in the harness has one, taken from here.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Budgets {
    /// Bringing the environment up.
    #[serde(default = "Budgets::d_up", alias = "labUp")]
    pub up: Dur,
    #[serde(default = "Budgets::d_sync")]
    pub sync_barrier: Dur,
    #[serde(default = "Budgets::d_boot")]
    pub boot: Dur,
    #[serde(default = "Budgets::d_promote")]
    pub promote: Dur,
    #[serde(default = "Budgets::d_stop")]
    pub graceful_stop: Dur,
    #[serde(default = "Budgets::d_cmd")]
    pub command: Dur,
    /// A returned site repaired: resynced from the primary (Regional-DR) or clean again (Metro-DR).
    #[serde(default = "Budgets::d_resync")]
    pub resync: Dur,
    /// A fault shown in effect after it is caused, or gone after it is undone (a powered-on site's monitor
    /// answering, a thawed site's processes running).
    #[serde(default = "Budgets::d_fault_proof")]
    pub fault_proof: Dur,
}

impl Budgets {
    fn d_fault_proof() -> Dur {
        Dur(Duration::from_secs(30))
    }
    fn d_resync() -> Dur {
        Dur(Duration::from_secs(180))
    }
    fn d_up() -> Dur {
        Dur(Duration::from_secs(180))
    }
    fn d_sync() -> Dur {
        Dur(Duration::from_secs(90))
    }
    fn d_boot() -> Dur {
        Dur(Duration::from_secs(60))
    }
    fn d_promote() -> Dur {
        Dur(Duration::from_secs(90))
    }
    fn d_stop() -> Dur {
        Dur(Duration::from_secs(30))
    }
    fn d_cmd() -> Dur {
        Dur(Duration::from_secs(60))
    }
}

/// One of the environment file's budgets, by name: a wait bounded by it says its key when it runs out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    Up,
    SyncBarrier,
    Boot,
    Promote,
    GracefulStop,
    Command,
    Resync,
    FaultProof,
}

impl Budget {
    /// Its key in the environment file.
    pub fn key(self) -> &'static str {
        match self {
            Budget::Up => "budgets.up",
            Budget::SyncBarrier => "budgets.syncBarrier",
            Budget::Boot => "budgets.boot",
            Budget::Promote => "budgets.promote",
            Budget::GracefulStop => "budgets.gracefulStop",
            Budget::Command => "budgets.command",
            Budget::Resync => "budgets.resync",
            Budget::FaultProof => "budgets.faultProof",
        }
    }
}

impl Budgets {
    /// The deadline `b` gives, with its key (for the message of a wait that runs out).
    pub fn deadline(&self, b: Budget) -> crate::wait::Deadline {
        let d = match b {
            Budget::Up => self.up,
            Budget::SyncBarrier => self.sync_barrier,
            Budget::Boot => self.boot,
            Budget::Promote => self.promote,
            Budget::GracefulStop => self.graceful_stop,
            Budget::Command => self.command,
            Budget::Resync => self.resync,
            Budget::FaultProof => self.fault_proof,
        };
        crate::wait::Deadline::budget(b.key(), d.0)
    }
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            up: Self::d_up(),
            sync_barrier: Self::d_sync(),
            boot: Self::d_boot(),
            promote: Self::d_promote(),
            graceful_stop: Self::d_stop(),
            command: Self::d_cmd(),
            resync: Self::d_resync(),
            fault_proof: Self::d_fault_proof(),
        }
    }
}

impl EnvFile {
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Lab(_) => "lab",
            Backend::Kind(_) => "kind",
            Backend::Existing(_) => "existing",
            Backend::Sim(_) => "sim",
        }
    }
    /// The Regional-DR settings, if replication is regional.
    pub fn regional(&self) -> Option<&Regional> {
        match &self.replication {
            Replication::Regional(r) => Some(r),
            Replication::Metro(_) => None,
        }
    }
    /// The Metro-DR settings, if replication is metro.
    pub fn metro(&self) -> Option<&Metro> {
        match &self.replication {
            Replication::Metro(m) => Some(m),
            Replication::Regional(_) => None,
        }
    }
    /// The lab's settings, when the backend is the lab.
    pub fn lab(&self) -> Option<&LabSpec> {
        match &self.backend {
            Backend::Lab(l) => Some(l),
            _ => None,
        }
    }
    /// The replication interval (the declared RPO; zero when replication is synchronous).
    pub fn interval(&self) -> Duration {
        match &self.replication {
            Replication::Regional(r) => r.interval.0,
            Replication::Metro(_) => Duration::ZERO,
        }
    }
    /// The replication mode's name, for reports.
    pub fn mode_name(&self) -> &'static str {
        match self.replication {
            Replication::Regional(_) => "regional",
            Replication::Metro(_) => "metro",
        }
    }
}

/// A parsed, validated environment file and where it came from.
#[derive(Clone, Debug)]
pub struct EnvConfig {
    pub path: PathBuf,
    pub spec: EnvFile,
    /// The file's text as read (a failed scenario's gather keeps it).
    pub text: String,
}

/// Line (1-based) of the first occurrence of `key:` in `text`, for errors found after parsing.
fn line_of(text: &str, key: &str) -> u64 {
    let pat = format!("{key}:");
    text.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches("- ").trim_start_matches('{').trim_start();
            t.starts_with(&pat) || l.contains(&format!(" {pat}")) || l.contains(&format!("{{{pat}"))
        })
        .map(|i| i as u64 + 1)
        .unwrap_or(1)
}

pub use crate::text::yaml_error;

/// The flat forms of `backend` and `replication` that earlier versions read, named with their line so that
/// a user's file says what to write instead. Pure.
fn old_form(text: &str) -> Option<(u64, String)> {
    let mut in_replication = false;
    for (i, l) in text.lines().enumerate() {
        let line = i as u64 + 1;
        if !l.starts_with(' ') && !l.starts_with('#') && !l.trim().is_empty() {
            in_replication = l.starts_with("replication:");
        }
        if let Some(v) = l.strip_prefix("backend:").map(str::trim) {
            if !v.is_empty() && !v.starts_with('{') && !v.starts_with('#') {
                return Some((
                    line,
                    format!("backend: name the backend as a key with its settings under it, e.g. `backend: {{ {v}: {{}} }}` (found `backend: {v}`)"),
                ));
            }
        }
        if in_replication && l.trim_start().starts_with("mode:") {
            let v = l.trim_start().trim_start_matches("mode:").trim();
            return Some((line, format!("replication: name the mode as a key with its settings under it, e.g. `replication: {{ {v}: {{ interval: 5s, scheduler: harness }} }}` (found `mode: {v}`)")));
        }
    }
    None
}

/// Parses and validates an environment file's text. Pure.
pub fn from_yaml(path: &Path, text: &str) -> Result<EnvConfig, ConfigError> {
    let invalid = |line: u64, msg: String| ConfigError::Invalid { path: path.to_path_buf(), line, msg };
    if let Some((line, msg)) = old_form(text) {
        return Err(invalid(line, msg));
    }
    let spec: EnvFile = serde_saphyr::from_str(text).map_err(|e| {
        let (line, msg) = yaml_error(&e);
        invalid(line, msg)
    })?;
    let check = |ok: bool, key: &str, msg: &str| if ok { Ok(()) } else { Err(invalid(line_of(text, key), format!("{key}: {msg}"))) };
    check(!spec.name.trim().is_empty(), "name", "must not be empty")?;
    check(spec.sites.len() == 2, "sites", &format!("a DR environment has exactly two sites, found {}", spec.sites.len()))?;
    for s in &spec.sites {
        let ok = !s.name.is_empty() && s.name.len() <= 8 && s.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        check(ok, "name", &format!("site name {:?} must be 1-8 characters of a-z and 0-9", s.name))?;
    }
    check(spec.sites[0].name != spec.sites[1].name, "sites", &format!("two sites are named {:?}", spec.sites[0].name))?;
    match &spec.replication {
        Replication::Regional(r) => {
            let iv = r.interval.0;
            match r.scheduler {
                Scheduler::Ceph => check(
                    iv >= Duration::from_secs(60) && iv.as_secs() % 60 == 0 && iv.subsec_nanos() == 0,
                    "interval",
                    &format!("{} is below what Ceph's rbd mirror snapshot schedule supports (whole minutes, 1m at least); use scheduler: harness for shorter intervals", r.interval),
                )?,
                Scheduler::Harness => check(
                    iv >= Duration::from_secs(1) && iv <= Duration::from_secs(3600),
                    "interval",
                    &format!("{} is outside what the harness scheduler supports (1s to 1h)", r.interval),
                )?,
                Scheduler::Storage => {
                    check(iv >= Duration::from_secs(1), "interval", "must be 1s at least")?;
                    check(matches!(spec.backend, Backend::Existing(_)), "scheduler", "`storage` (the storage's own schedule) is for existing clusters; the lab takes `harness` or `ceph`, kind `ceph`")?;
                }
            }
            if let Some(a) = r.sync_allowance {
                check(
                    a.0 > Duration::ZERO && a.0 <= iv,
                    "syncAllowance",
                    &format!("{a} must be above zero and at most the interval ({}): a larger allowance would let replication lag past the promise", r.interval),
                )?;
            }
        }
        Replication::Metro(mt) => {
            let ok = !mt.arbiter.is_empty() && mt.arbiter.len() <= 8 && mt.arbiter.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            check(ok, "arbiter", &format!("arbiter name {:?} must be 1-8 characters of a-z and 0-9", mt.arbiter))?;
            check(spec.sites.iter().all(|s| s.name != mt.arbiter), "arbiter", &format!("the arbiter {:?} must not be one of the data sites", mt.arbiter))?;
            check(mt.max_rtt.0 > Duration::ZERO, "maxRtt", "must be above zero")?;
            check(
                !(mt.stretch_mode && mt.placement == Placement::FirstSiteOnly),
                "stretchMode",
                "stretch mode spreads the replicas over both data sites: `placement: firstSiteOnly` needs `stretchMode: false`",
            )?;
        }
    }
    check((1..=1000).contains(&spec.vm.write_rate), "writeRate", "must be 1 to 1000 records per second")?;
    let sites = spec.site_names();
    let per_site = |key: &str, keys: Vec<&String>| -> Result<(), ConfigError> {
        let got: std::collections::BTreeSet<&str> = keys.iter().map(|k| k.as_str()).collect();
        let want: std::collections::BTreeSet<&str> = sites.iter().map(String::as_str).collect();
        check(
            got == want,
            key,
            &format!(
                "must name exactly the sites ({}), found {}",
                want.iter().copied().collect::<Vec<_>>().join(", "),
                if got.is_empty() { "none".to_string() } else { got.iter().copied().collect::<Vec<_>>().join(", ") }
            ),
        )
    };
    let guest = |g: &Guest| -> Result<(), ConfigError> {
        check(g.memory.0 >= 64 << 20, "memory", "the guest needs 64Mi at least")?;
        check(g.disk_size.0 >= 4 << 20 && g.disk_size.0 % 4096 == 0, "diskSize", "must be at least 4Mi and a multiple of 4Ki")?;
        check(crate::text::dns_label(&g.namespace), "namespace", &format!("{:?} is not a Kubernetes namespace name", g.namespace))?;
        check(!g.app_label.is_empty() && !g.app_label.starts_with("kubevirt.io/"), "appLabel", &format!("{:?} cannot label an application", g.app_label))
    };
    match &spec.backend {
        Backend::Sim(x) => {
            check(x.disk_size.0 >= 4 << 20 && x.disk_size.0 % 4096 == 0, "diskSize", "must be at least 4Mi and a multiple of 4Ki")?;
            check(x.sync_time_min.0 <= x.sync_time_max.0, "syncTimeMax", "must be at least syncTimeMin")?;
            if let Some(r) = spec.regional() {
                check(r.scheduler == Scheduler::Harness, "scheduler", "the simulated storage is driven by the harness's scheduler (scheduler: harness)")?;
            }
        }
        Backend::Lab(l) => {
            check(l.memory.0 >= 64 << 20, "memory", "the guest needs 64Mi at least")?;
            check(l.disk_size.0 >= 4 << 20 && l.disk_size.0 % 4096 == 0, "diskSize", "must be at least 4Mi and a multiple of 4Ki")?;
        }
        Backend::Kind(k) => {
            per_site("osdDevices", k.osd_devices.keys().collect())?;
            for d in k.osd_devices.values() {
                let ok = d.to_str().and_then(|s| s.strip_prefix("/dev/loop")).is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
                if !ok {
                    // the line of the device itself, not of the map
                    let line = text
                        .lines()
                        .position(|l| l.trim_end().ends_with(&format!(": {}", d.display())))
                        .map(|i| i as u64 + 1)
                        .unwrap_or_else(|| line_of(text, "osdDevices"));
                    return Err(invalid(
                        line,
                        format!("osdDevices: {} is not a loop device (/dev/loopN): the OSDs get explicitly named loop devices only", d.display()),
                    ));
                }
            }
            let devs: std::collections::BTreeSet<&PathBuf> = k.osd_devices.values().collect();
            check(devs.len() == k.osd_devices.len(), "osdDevices", "two sites name the same loop device")?;
            check(k.osd_size.0 >= 5 << 30, "osdSize", "Ceph's OSD needs 5Gi at least")?;
            if let Some(img) = &k.node_image {
                check(img.contains("@sha256:"), "nodeImage", &format!("{img} must be pinned by digest (name:tag@sha256:...)"))?;
            }
            check(
                crate::text::dns_label(&spec.name) && spec.name.len() <= 40,
                "name",
                &format!("{:?} names the kind clusters (<name>-<site>): a-z, 0-9 and '-', at most 40 characters", spec.name),
            )?;
            check(
                spec.regional().is_none_or(|r| r.scheduler == Scheduler::Ceph),
                "scheduler",
                "the kind clusters replicate on Ceph's own snapshot schedule (scheduler: ceph)",
            )?;
            check(spec.metro().is_none(), "metro", "the kind environment replicates with RBD mirroring (regional); Metro-DR needs one stretched Ceph cluster (use the lab's lab-metro.yaml, or an existing environment)")?;
            guest(&k.guest)?;
        }
        Backend::Existing(x) => {
            per_site("contexts", x.contexts.keys().collect())?;
            if let Some(h) = &x.hub {
                if !h.clusters.is_empty() {
                    per_site("clusters", h.clusters.keys().collect())?;
                }
            } else {
                check(
                    x.volume_replication_class.is_some(),
                    "volumeReplicationClass",
                    "is needed when no hub is named (DR actions then flip VolumeReplication on the clusters)",
                )?;
            }
            check(
                spec.regional().is_none_or(|r| r.scheduler != Scheduler::Harness),
                "scheduler",
                "existing clusters replicate on their own schedule (scheduler: storage, or ceph; the DRPolicy's schedulingInterval with a hub)",
            )?;
            for (k, undo) in [("powerLoss", "restore"), ("isolate", "reconnect")] {
                check(
                    !x.commands.contains_key(k) || x.commands.contains_key(undo),
                    "commands",
                    &format!("`{k}` needs its undoing, `{undo}` (every fault is recovered when its scenario ends)"),
                )?;
            }
            for k in x.commands.keys() {
                check(EXISTING_COMMANDS.contains(&k.as_str()), "commands", &format!("unknown fault command {k:?} (known: {})", EXISTING_COMMANDS.join(", ")))?;
            }
            guest(&x.guest)?;
        }
    }
    Ok(EnvConfig { path: path.to_path_buf(), spec, text: text.to_string() })
}

/// Reads and parses an environment file.
pub fn load(path: &Path) -> Result<EnvConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    from_yaml(path, &text)
}

impl EnvFile {
    pub fn site_names(&self) -> Vec<String> {
        self.sites.iter().map(|s| s.name.clone()).collect()
    }
}

impl EnvConfig {
    pub fn site_names(&self) -> Vec<String> {
        self.spec.site_names()
    }
    /// One sentence on the replication in force, for status and every report.
    pub fn replication_summary(&self) -> String {
        match &self.spec.replication {
            Replication::Regional(r) => match r.scheduler {
                Scheduler::Harness => format!(
                    "regional (async RBD snapshot mirroring), mirror snapshot every {} issued by the harness, sync allowance {}",
                    r.interval,
                    Dur(r.allowance())
                ),
                Scheduler::Ceph => format!(
                    "regional (async RBD snapshot mirroring), Ceph rbd mirror snapshot schedule every {}, sync allowance {}",
                    r.interval,
                    Dur(r.allowance())
                ),
                Scheduler::Storage => {
                    format!("regional (asynchronous, the storage's own schedule), promised every {}, sync allowance {}", r.interval, Dur(r.allowance()))
                }
            },
            Replication::Metro(m) => format!(
                "metro (synchronous: one Ceph cluster stretched over sites {} with arbiter {}, {}), sites at most {} apart",
                self.site_names().join(" and "),
                m.arbiter,
                if m.stretch_mode { "in stretch mode: 2 replicas in each data site, min_size 2" } else { "without stretch mode: a replica in each data site" },
                m.max_rtt
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
name: lab-regional
backend:
  lab:
    memory: 128Mi
disposable: true
sites:
  - name: a
  - name: b
replication:
  regional:
    interval: 5s
    scheduler: harness
vm:
  writeRate: 50
budgets:
  syncBarrier: 60s
";

    fn err(text: &str) -> String {
        from_yaml(Path::new("env.yaml"), text).unwrap_err().to_string()
    }

    #[test]
    fn good_file_parses_with_defaults() {
        let e = from_yaml(Path::new("env.yaml"), GOOD).unwrap();
        assert_eq!(e.spec.interval(), Duration::from_secs(5));
        assert_eq!(e.spec.budgets.sync_barrier.0, Duration::from_secs(60));
        assert_eq!(e.spec.budgets.boot.0, Duration::from_secs(60));
        let lab = e.spec.lab().unwrap();
        assert_eq!(lab.disk_size.0, 64 << 20);
        assert_eq!(lab.disk_records(), 16383);
        assert_eq!(e.site_names(), ["a".to_string(), "b".to_string()]);
        assert!(e.replication_summary().contains("every 5s issued by the harness, sync allowance 5s"), "{}", e.replication_summary());
        assert_eq!(e.spec.regional().unwrap().allowance(), Duration::from_secs(5));
    }

    #[test]
    fn sync_allowance_is_declared_and_capped_at_one_interval() {
        let with = |a: &str| GOOD.replace("    scheduler: harness", &format!("    scheduler: harness\n    syncAllowance: {a}"));
        let e = from_yaml(Path::new("env.yaml"), &with("3s")).unwrap();
        assert_eq!(e.spec.regional().unwrap().allowance(), Duration::from_secs(3));
        let e = err(&with("6s"));
        assert!(e.starts_with("env.yaml:13: syncAllowance:") && e.contains("at most the interval (5s)"), "{e}");
        assert!(err(&with("0s")).contains("above zero"));
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let e = err(&GOOD.replace("  writeRate: 50", "  writeRate: 50\n  colour: red"));
        assert!(e.starts_with("env.yaml:15: unknown field `colour`"), "{e}");
        assert!(e.contains("colour"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }

    #[test]
    fn bad_duration_is_refused() {
        let e = err(&GOOD.replace("interval: 5s", "interval: 5 parsecs"));
        assert!(e.starts_with("env.yaml:11:"), "{e}");
        assert!(e.contains("5 parsecs"), "{e}");
    }

    #[test]
    fn ceph_scheduler_below_a_minute_is_refused() {
        let e = err(&GOOD.replace("scheduler: harness", "scheduler: ceph"));
        assert!(e.starts_with("env.yaml:11: interval:"), "{e}");
        assert!(e.contains("1m at least"), "{e}");
        assert!(from_yaml(Path::new("x"), &GOOD.replace("scheduler: harness", "scheduler: ceph").replace("5s", "2m")).is_ok());
        assert!(err(&GOOD.replace("scheduler: harness", "scheduler: ceph").replace("5s", "90s")).contains("whole minutes"));
    }

    #[test]
    fn duplicate_site_names_are_refused() {
        let e = err(&GOOD.replace("- name: b", "- name: a"));
        assert!(e.contains("two sites are named \"a\""), "{e}");
        assert!(e.starts_with("env.yaml:6:"), "{e}");
    }

    #[test]
    fn impossible_values_are_refused() {
        assert!(err(&GOOD.replace("writeRate: 50", "writeRate: 0")).contains("writeRate"));
        assert!(err(&GOOD.replace("  - name: b\n", "")).contains("exactly two sites"));
        assert!(err(&GOOD.replace("interval: 5s", "interval: 500ms")).contains("1s to 1h"));
        assert!(err(&GOOD.replace("  lab:", "  moon:")).contains("moon"));
        // the backend and the replication mode are tagged variants: the old flat forms are refused by line
        let e = err(&GOOD.replace("backend:\n  lab:\n    memory: 128Mi", "backend: lab"));
        assert!(e.starts_with("env.yaml:2:"), "{e}");
        assert!(e.contains("`backend: { lab: {} }`"), "{e}");
        let e = err(&GOOD.replace("  regional:\n    interval: 5s\n    scheduler: harness", "  mode: regional\n  interval: 5s\n  scheduler: harness"));
        assert!(e.starts_with("env.yaml:10: replication: name the mode as a key"), "{e}");
        // Metro-DR: an arbiter that is not a data site
        let metro = GOOD.replace("  regional:\n    interval: 5s\n    scheduler: harness", "  metro:\n    arbiter: c");
        let e = from_yaml(Path::new("m.yaml"), &metro).unwrap();
        assert_eq!((e.spec.metro().unwrap().arbiter.as_str(), e.spec.metro().unwrap().max_rtt.0), ("c", Duration::from_millis(10)));
        assert_eq!(e.spec.interval(), Duration::ZERO);
        assert!(err(&metro.replace("arbiter: c", "arbiter: a")).contains("must not be one of the data sites"));
        assert!(e.spec.metro().unwrap().stretch_mode, "stretch mode is the default");
        assert!(err(&metro.replace("arbiter: c", "arbiter: c\n    placement: firstSiteOnly")).contains("stretchMode"));
        // lab-only fields live under the lab
        assert!(err(&GOOD.replace("vm:\n  writeRate: 50", "vm:\n  writeRate: 50\n  memory: 128Mi")).contains("unknown field `memory`"));
        assert!(err("name: [unclosed").starts_with("env.yaml:"));
        assert!(err(&GOOD.replace("memory: 128Mi", "memory: lots")).contains("lots"));
    }
}
