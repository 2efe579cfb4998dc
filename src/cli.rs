//! Command-line definitions.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub const DEFAULT_ENV: &str = "environments/lab-regional.yaml";

#[derive(Parser, Debug)]
#[command(name = "dr-drill", version, about = "Chaos and conformance drills for disaster recovery of virtual machines")]
pub struct Cli {
    /// Log level for the harness's own diagnostics (error, warn, info, debug).
    #[arg(long, global = true, default_value = "warn")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run Gherkin DR drills against an environment.
    Run {
        /// Environment file.
        #[arg(long = "env", default_value = DEFAULT_ENV)]
        env: PathBuf,
        /// Tag expression selecting scenarios, e.g. "@relocate and not @slow". Without it and without
        /// PATHs: "not @negative and not @wan and not @slow and not @known-defect and not @fleet" (negative
        /// controls are expected to fail; @slow drills are long cycles run by tag; WAN drills need an
        /// environment with a larger sync allowance, e.g. environments/lab-regional-wan.yaml; @known-defect
        /// drills catch a defect of the storage's release, at the rate the README gives; @fleet drills move
        /// applications of many VMs and take minutes).
        #[arg(long)]
        tags: Option<String>,
        /// Where reports go (default reports/<run-id>).
        #[arg(long)]
        report_dir: Option<PathBuf>,
        /// Keep the lab (namespaces, daemons, run directory) after the run, and say where it is.
        #[arg(long)]
        keep: bool,
        /// Existing clusters: confirm that destructive steps (faults, failovers) may run against them, by
        /// repeating the environment's name (the file must also say `disposable: true`).
        #[arg(long, value_name = "ENV_NAME")]
        confirm: Option<String>,
        /// Accept a run where every selected scenario is skipped (exit 0); without it such a run proved
        /// nothing and exits 2.
        #[arg(long)]
        allow_skipped: bool,
        /// Simulated environments (`backend: sim`): the seed of the run, replacing the file's (a failed run
        /// prints the seed that replays it).
        #[arg(long)]
        seed: Option<u64>,
        /// Run the selected scenarios this many times, each run with a fresh environment in its own folder
        /// (`run-1`, ...), then sum them up per scenario in campaign.json and the campaign's index.html:
        /// pass rate, p50/p95/max of the loss window and of each RTO segment, each failed run's reason.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
        repeat: u32,
        /// Feature files or directories (default: the bundled features/).
        paths: Vec<PathBuf>,
    },
    /// Rebuild a run's evidence (index.html, the Jepsen histories) from its folder's files, or a
    /// campaign's page; with --compare, two campaigns (or runs) side by side in NEW/compare.html.
    Report {
        /// A run's folder (summary.json) or a campaign's (campaign.json).
        #[arg(required_unless_present = "compare")]
        dir: Option<PathBuf>,
        /// NEW OLD: two campaigns' folders (a release against the previous one).
        #[arg(long, num_args = 2, value_names = ["NEW", "OLD"])]
        compare: Option<Vec<PathBuf>>,
    },
    /// Bring an environment up, tear it down, or show its state.
    Env {
        #[command(subcommand)]
        action: EnvAction,
    },
    /// DR-readiness checks over manifests (files, directories, `-` for stdin) from the OpenShift
    /// Virtualization DR guidance. Exit 0 clean, 1 findings at or above --fail-on, 2 unreadable input.
    Lint(LintArgs),
    /// Measure the lab against its speed targets and print the figures.
    Bench {
        #[arg(long = "env", default_value = DEFAULT_ENV)]
        env: PathBuf,
        /// How many lab bring-ups to time.
        #[arg(long, default_value_t = 1)]
        rounds: u32,
        /// Also run the default drills and report them against their targets (default run within 10
        /// minutes, a failover scenario within the replication interval plus 60 s).
        #[arg(long)]
        drills: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum EnvAction {
    /// Bring the environment up and leave it running (until `env down`).
    Up {
        #[arg(long = "env", default_value = DEFAULT_ENV)]
        env: PathBuf,
        /// Print the complete ordered plan (commands, manifests, pinned versions and digests) and touch
        /// nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Tear down what `env up` made.
    Down {
        #[arg(long = "env", default_value = DEFAULT_ENV)]
        env: PathBuf,
    },
    /// Build the probe's kernel-boot image for KubeVirt (FROM scratch: the lab's guest kernel and the
    /// probe's initramfs), tagged as the environment's `probeImage` (kind: its local tag); `--push` pushes
    /// it to the registry that tag names, for existing clusters to pull.
    Image {
        #[arg(long = "env", default_value = DEFAULT_ENV)]
        env: PathBuf,
        #[arg(long)]
        push: bool,
    },
    /// Show whether the environment is up, its sites' health and the replication in force.
    Status {
        #[arg(long = "env", default_value = DEFAULT_ENV)]
        env: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct LintArgs {
    /// Manifests: YAML files (multi-document), directories (a GitOps tree), or `-` for stdin.
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "human")]
    pub format: crate::lint::output::Format,
    /// Lowest severity that makes the exit code 1.
    #[arg(long, value_enum, default_value = "error")]
    pub fail_on: crate::lint::Severity,
    /// The common label selecting a discovered application's resources (default: found per application:
    /// the label its VirtualMachine shares with most of its resources, whatever the key, e.g. `app`,
    /// `app.kubernetes.io/part-of`, `app.kubernetes.io/name`).
    #[arg(long)]
    pub app_label: Option<String>,
    /// How the application is protected by RHACM.
    #[arg(long, value_enum, default_value = "auto")]
    pub mode: crate::lint::rules::AppMode,
    /// The DR kind the application is meant for.
    #[arg(long, value_enum, default_value = "regional")]
    pub dr: crate::lint::rules::DrKind,
    /// Declared RPO, e.g. 5m (default: the --env file's replication interval when given).
    #[arg(long)]
    pub rpo: Option<crate::units::Dur>,
    /// Environment file whose replication interval is the declared RPO.
    #[arg(long = "env")]
    pub env: Option<PathBuf>,
    /// The replication class flattens cloned images (cloned PVCs can be protected).
    #[arg(long)]
    pub flatten: bool,
    /// Lint a live cluster: the kubeconfig context to read.
    #[arg(long, requires = "namespace", conflicts_with = "paths")]
    pub context: Option<String>,
    /// Lint a live cluster: the namespace of the application.
    #[arg(long, short = 'n', requires = "context")]
    pub namespace: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Live, Metro-DR: the peer site's context; the median API round trip to it is checked against 10 ms
    /// (run lint from the primary site for the figure to mean the inter-site distance).
    #[arg(long, requires = "context")]
    pub peer_context: Option<String>,
}
