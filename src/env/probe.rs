//! The Workload port for the probe, whatever runs the guest. A `Launcher` boots one machine (the lab: QEMU
//! in a site's namespace; Kubernetes: a KubeVirt VM) and hands over the probe's channel (the lab: a
//! virtio-serial unix socket; KubeVirt: the serial console's websocket); everything else — the witness
//! stamping each line on arrival, the boot logs, graceful stops, crash recovery, abandoned boots, the
//! history the oracle judges — is here, once.

use crate::clock::Wt;
use crate::config::Budgets;
use crate::error::{from_wait, Cause, EnvError};
use crate::events::{Bus, Event};
use crate::oracle::{Ack, History};
use crate::ports::{Boot as BootOf, Served, Stopped, Volume, Workload};
use crate::wait;
use async_trait::async_trait;
use dr_probe::{boot_tag_hex, Msg, ScanAssembler, ScanReport};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Write,
    Verify,
    /// Crash recovery (scan), then continue writing after the last contiguous record.
    Resume,
    Corrupt(u64),
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Write => "write",
            Mode::Verify => "verify",
            Mode::Resume => "resume",
            Mode::Corrupt(_) => "corrupt",
        }
    }
    /// The probe's kernel arguments for this mode.
    pub fn cmdline(self) -> String {
        match self {
            Mode::Corrupt(seq) => format!("drprobe.mode=corrupt drprobe.seq={seq}"),
            m => format!("drprobe.mode={}", m.name()),
        }
    }
}

/// What one boot of the VM said, stamped by the witness.
#[derive(Clone, Debug, Default)]
pub struct BootLog {
    pub started: Wt,
    pub site: String,
    pub mode: String,
    pub hello: Option<(Wt, String)>,
    /// (sequence, witness time of the ack, guest wall clock ns)
    pub acks: Vec<(u64, Wt, u64)>,
    /// Durable write latency of each ack that reported one, microseconds.
    pub ack_lat_us: Vec<u32>,
    pub scan: Option<(Wt, ScanReport)>,
    pub stopped: Option<(Wt, u64)>,
    pub corrupted: Option<u64>,
    pub full: Option<u64>,
    /// Errors the probe reported (a write refused by the storage among them), stamped on arrival.
    pub errors: Vec<(Wt, String)>,
    pub eof: Option<Wt>,
    /// (n, witness time) of PONG answers.
    pub pongs: Vec<(u64, Wt)>,
    /// Lines from the probe that could not be parsed (kept: an ack among them would be missing evidence).
    pub garbled: Vec<String>,
    /// The stream ended inside a line (the guest killed while sending it: a power loss): what arrived of
    /// it. Nothing in it reached the harness whole, so it acknowledged nothing; kept, not judged.
    pub cut_tail: Option<String>,
    /// The stream was cut by the witness (its site lost without closing the channel), not ended by it.
    pub cut: bool,
}

impl BootLog {
    pub fn boot_id(&self) -> Option<&str> {
        self.hello.as_ref().map(|h| h.1.as_str())
    }
}

/// The witness's record of `boots`: their acks tagged with the boot that made them, their STOP records,
/// and the lines it could not read.
pub fn history(boots: &[BootLog]) -> History {
    let mut h = History::default();
    for b in boots {
        let Some(tag) = b.boot_id().and_then(boot_tag_hex) else { continue };
        h.acks.extend(b.acks.iter().map(|(seq, at, _)| Ack { seq: *seq, at: *at, boot: tag }));
        h.stops.extend(b.stopped.map(|s| (tag, s.1)));
        h.errors.extend(b.errors.iter().map(|(at, e)| (tag, *at, e.clone())));
        h.garbled += b.garbled.len();
        h.latencies_us.extend(&b.ack_lat_us);
    }
    h
}

/// The history of the boots started at or after `since` (all with None): the writers a DR action is judged
/// on; the tags of the others are listed as not judged (their records on disk are theirs). Pure.
pub fn history_since(boots: &[BootLog], since: Option<Wt>) -> History {
    let (judged, other): (Vec<BootLog>, Vec<BootLog>) = boots.iter().cloned().partition(|b| since.is_none_or(|t| b.started >= t));
    let mut h = history(&judged);
    h.unjudged_boots = other.iter().filter_map(|b| b.boot_id().and_then(boot_tag_hex)).collect();
    h
}

/// A line as the probe sent it (its newline removed, a CR before it too), or None: the stream ended inside
/// it (no newline), a line cut off by the guest's death, never whole at the harness. Bytes that are not
/// UTF-8 stay in the line (replaced), so that it is kept as unreadable rather than lost. Pure.
pub fn whole_line(buf: &[u8]) -> Option<String> {
    let body = buf.strip_suffix(b"\n")?;
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    Some(String::from_utf8_lossy(body).into_owned())
}

/// One running guest as its launcher sees it.
#[async_trait]
pub trait Machine: Send {
    /// Still running?
    async fn alive(&mut self) -> bool;
    /// Hard stop (power loss of its site, or teardown). Idempotent.
    async fn kill(&mut self);
    /// Waits for the guest to end by itself (it powered off); false on deadline.
    async fn wait_exit(&mut self, deadline: Duration) -> bool;
    /// Peak resident memory, bytes (0 where the harness cannot see it).
    fn rss_bytes(&self) -> u64;
    /// The last lines of the guest's own console, for errors ("" where there is none).
    fn console_tail(&self, lines: usize) -> String;
}

/// One machine seen through each of its disks' channels (a VM of several disks): every view kills, awaits
/// and measures the same machine; killing it twice is harmless.
#[derive(Clone)]
pub struct SharedMachine(Arc<tokio::sync::Mutex<Box<dyn Machine>>>);

impl SharedMachine {
    pub fn new(m: Box<dyn Machine>) -> SharedMachine {
        SharedMachine(Arc::new(tokio::sync::Mutex::new(m)))
    }
}

#[async_trait]
impl Machine for SharedMachine {
    async fn alive(&mut self) -> bool {
        self.0.lock().await.alive().await
    }
    async fn kill(&mut self) {
        self.0.lock().await.kill().await
    }
    async fn wait_exit(&mut self, deadline: Duration) -> bool {
        let t0 = std::time::Instant::now();
        match tokio::time::timeout(deadline, self.0.lock()).await {
            Ok(mut m) => m.wait_exit(deadline.saturating_sub(t0.elapsed())).await,
            Err(_) => false,
        }
    }
    fn rss_bytes(&self) -> u64 {
        self.0.try_lock().map(|m| m.rss_bytes()).unwrap_or(0)
    }
    fn console_tail(&self, lines: usize) -> String {
        self.0.try_lock().map(|m| m.console_tail(lines)).unwrap_or_default()
    }
}

/// What to boot.
pub struct Launch<'a> {
    pub vm: &'a str,
    pub site: &'a str,
    pub volume: &'a Volume,
    pub mode: Mode,
    pub rate: u32,
    /// How far the probe's scan reads (records).
    pub scan_limit: u64,
}

/// A booted guest: the machine, and the probe's channel (lines in, commands out). The launcher returns it
/// before the guest can write anything the witness would miss.
pub struct Launched {
    pub machine: Box<dyn Machine>,
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
    pub writer: Box<dyn AsyncWrite + Send + Unpin>,
    pub started: Wt,
}

/// Boots guests running the probe: one implementation per backend.
#[async_trait]
pub trait Launcher: Send {
    async fn launch(&mut self, l: &Launch<'_>) -> Result<Launched, EnvError>;
    /// Boots one machine with a disk per launch (the disks of one VM, same site and mode), each disk its
    /// own probe writer and channel; killing any one's machine kills them all. A backend whose machines
    /// carry one disk boots each disk as its own machine (the simulation: the writers are independent
    /// anyway); the capabilities keep a multi-disk VM off backends that cannot boot one.
    async fn launch_group(&mut self, ls: &[Launch<'_>]) -> Result<Vec<Launched>, EnvError> {
        let mut out: Vec<Launched> = vec![];
        for l in ls {
            match self.launch(l).await {
                Ok(x) => out.push(x),
                Err(e) => {
                    for mut x in out {
                        x.machine.kill().await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(out)
    }
    /// Records the VM's disk holds.
    fn disk_records(&self) -> u64;
    /// The scenario is over: remove what the launcher made for `vm` (nothing left behind).
    async fn forget(&mut self, _vm: &str) {}
    /// The console files of `vm`'s machines, where the backend keeps them.
    fn consoles(&self, _vm: &str) -> Vec<std::path::PathBuf> {
        vec![]
    }
}

fn vm_err(vm: &str, site: &str, cause: Cause, detail: impl Into<String>) -> EnvError {
    EnvError::Vm { vm: vm.into(), site: site.into(), detail: detail.into(), cause }
}

/// One boot: its machine, and the witness's log of what its probe said.
pub struct Boot {
    pub vm: String,
    pub site: String,
    pub mode: Mode,
    pub machine: Box<dyn Machine>,
    pub log: Arc<Mutex<BootLog>>,
    /// Bumped on every line from the probe (u64::MAX at the end of its stream).
    changed: Arc<tokio::sync::Mutex<watch::Receiver<u64>>>,
    /// The witness's reader of the probe's channel.
    reader: tokio::task::JoinHandle<()>,
    writer: Option<Box<dyn AsyncWrite + Send + Unpin>>,
}

impl Boot {
    /// Starts the witness on a launched guest's channel: every line is stamped on arrival, published on the
    /// run's event stream and kept in the boot's log.
    pub fn witness(l: Launched, bus: &Bus, vm: &str, site: &str, mode: Mode) -> Boot {
        let started = l.started;
        let log = Arc::new(Mutex::new(BootLog { started, site: site.to_string(), mode: mode.name().to_string(), ..Default::default() }));
        let (tx, rx) = watch::channel(0u64);
        let l2 = log.clone();
        let vm_name = vm.to_string();
        let bus = bus.clone();
        bus.publish_at(started, Event::BootRequested { vm: vm_name.clone(), site: site.to_string(), mode: mode.name().to_string() });
        let rd = l.reader;
        let reader = tokio::spawn(async move {
            let mut rd = BufReader::new(rd);
            let mut asm = ScanAssembler::default();
            let mut n = 0u64;
            let mut buf = Vec::new();
            loop {
                buf.clear();
                if !matches!(rd.read_until(b'\n', &mut buf).await, Ok(k) if k > 0) {
                    break;
                }
                let t = Wt::now();
                let Some(whole) = whole_line(&buf) else {
                    l2.lock().unwrap().cut_tail = Some(String::from_utf8_lossy(&buf).into_owned());
                    break;
                };
                let line = whole;
                let Some(m) = Msg::parse(&line) else {
                    // the kernel's own console lines never come over this channel; anything unreadable is kept
                    if !line.trim().is_empty() {
                        l2.lock().unwrap().garbled.push(line);
                    }
                    continue;
                };
                {
                    let mut g = l2.lock().unwrap();
                    if let Some(r) = asm.feed(&m) {
                        let (highest_contiguous, ranges, corrupt, stop) = (r.highest_contiguous, r.ranges.len(), r.corrupt.len(), r.stop);
                        let surviving = r.ranges.iter().map(|&(first, last, boot)| (first, last, format!("{boot:016x}"))).collect();
                        bus.publish_at(t, Event::Scan { vm: vm_name.clone(), highest_contiguous, ranges, surviving, corrupt, stop });
                        g.scan = Some((t, r));
                    }
                    let boot = g.hello.as_ref().map(|h| h.1.clone()).unwrap_or_default();
                    match m {
                        Msg::Hello { boot, .. } => {
                            bus.publish_at(t, Event::ProbeUp { vm: vm_name.clone(), boot: boot.clone() });
                            g.hello = Some((t, boot))
                        }
                        Msg::Ack { seq, wall_ns, lat_us } => {
                            if lat_us > 0 {
                                // 0: a probe that does not measure it
                                g.ack_lat_us.push(lat_us.min(u32::MAX as u64) as u32);
                            }
                            bus.publish_at(t, Event::Ack { vm: vm_name.clone(), boot, seq, guest_wall_ns: wall_ns, lat_us });
                            g.acks.push((seq, t, wall_ns))
                        }
                        Msg::Stopped { seq } => {
                            bus.publish_at(t, Event::StopRecord { vm: vm_name.clone(), seq });
                            g.stopped = Some((t, seq))
                        }
                        Msg::Corrupted { seq } => g.corrupted = Some(seq),
                        Msg::Full { seq } => g.full = Some(seq),
                        Msg::Error { msg } => g.errors.push((t, msg)),
                        Msg::Pong { n } => g.pongs.push((n, t)),
                        _ => {}
                    }
                }
                n += 1;
                let _ = tx.send(n);
            }
            let t = Wt::now();
            bus.publish_at(t, Event::ProbeGone { vm: vm_name });
            l2.lock().unwrap().eof = Some(t);
            let _ = tx.send(u64::MAX);
        });
        Boot { vm: vm.into(), site: site.into(), mode, machine: l.machine, log, changed: Arc::new(tokio::sync::Mutex::new(rx)), reader, writer: Some(l.writer) }
    }

    fn err(&self, cause: Cause, detail: impl Into<String>) -> EnvError {
        vm_err(&self.vm, &self.site, cause, detail)
    }

    /// A tick for `wait::until`: the next line from the probe.
    fn next_line(&self) -> impl FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let rx = self.changed.clone();
        move || {
            let rx = rx.clone();
            Box::pin(async move {
                if rx.lock().await.changed().await.is_err() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        }
    }

    /// Waits until `cond` holds on the boot log; fails on deadline, a probe error, or the stream ending
    /// first. The guest not doing what it should in time is the system's failure.
    pub async fn wait_for<T>(&mut self, what: &str, deadline: impl Into<wait::Deadline>, cond: impl Fn(&BootLog) -> Option<T>) -> Result<T, EnvError> {
        let deadline = deadline.into();
        let log = self.log.clone();
        let (vm, site) = (self.vm.clone(), self.site.clone());
        let check = || {
            let g = log.lock().unwrap();
            let r = if let Some(v) = cond(&g) {
                Ok(Some(v))
            } else if let Some((_, e)) = g.errors.first() {
                Err(vm_err(&vm, &site, Cause::System, format!("probe reported an error while waiting for {what}: {e}")))
            } else if g.eof.is_some() {
                Err(vm_err(&vm, &site, Cause::System, format!("the guest went away before {what}")))
            } else {
                Ok(None)
            };
            std::future::ready(r)
        };
        let res = wait::until(what, deadline, check, self.next_line()).await;
        let tail = || self.machine.console_tail(3);
        res.map_err(|e| match e {
            wait::WaitError::Timeout { .. } => {
                self.err(Cause::System, format!("{what} did not happen within {:?}{} (console: {})", deadline.after, wait::budget_note(&deadline.key), tail()))
            }
            wait::WaitError::Failed(EnvError::Vm { vm, site, detail, cause }) if detail.starts_with("the guest went away") => {
                EnvError::Vm { vm, site, detail: format!("{detail} (console: {})", tail()), cause }
            }
            wait::WaitError::Failed(e) => e,
        })
    }

    async fn send(&mut self, what: &str, line: &str, cause: Cause) -> Result<(), EnvError> {
        if let Some(w) = self.writer.as_mut() {
            let r = async {
                w.write_all(line.as_bytes()).await?;
                w.flush().await
            };
            r.await.map_err(|e| vm_err(&self.vm, &self.site, cause, format!("failed to send {what}: {e}")))?;
        }
        Ok(())
    }

    /// Graceful shutdown: asks the probe to stop, waits for the durable STOP record and the guest's end.
    pub async fn graceful_stop(&mut self, deadline: impl Into<wait::Deadline>) -> Result<(Wt, u64), EnvError> {
        let deadline = deadline.into();
        // a disk of a VM of several disks may have been asked already, with its siblings
        if self.log.lock().unwrap().stopped.is_none() {
            self.send("stop", "stop\n", Cause::System).await?;
        }
        let r = self.wait_for("the STOP record", deadline, |g| g.stopped).await?;
        if !self.machine.wait_exit(deadline.after).await {
            self.machine.kill().await;
            return Err(self.err(Cause::System, "the guest did not power off after the STOP record"));
        }
        Ok(r)
    }

    /// Asks the probe for its STOP record without waiting for it (a sibling disk is being stopped: the
    /// machine powers off once every disk's writer has ended). A channel already closed is left alone.
    pub async fn ask_stop(&mut self) {
        let done = {
            let g = self.log.lock().unwrap();
            g.stopped.is_some() || g.eof.is_some()
        };
        if !done {
            let _ = self.send("stop", "stop\n", Cause::System).await;
        }
    }

    /// Round trip over the probe's channel: host "ping" to guest PONG, as the witness sees it.
    pub async fn ping(&mut self, n: u64) -> Result<Duration, EnvError> {
        let t0 = Wt::now();
        self.send("ping", &format!("ping {n}\n"), Cause::Harness).await?;
        let at = self.wait_for("a PONG", Duration::from_secs(5), |g| g.pongs.iter().find(|p| p.0 == n).map(|p| p.1)).await?;
        Ok(at.since(t0))
    }

    /// Waits for the guest to power off by itself (verify and corrupt modes).
    pub async fn wait_poweroff(&mut self, deadline: Duration) -> Result<(), EnvError> {
        if self.machine.wait_exit(deadline).await {
            Ok(())
        } else {
            self.machine.kill().await;
            Err(self.err(Cause::System, format!("the guest did not power off within {deadline:?}")))
        }
    }

    /// Waits until the witness has read the probe's stream to its end (the guest is gone and every line it
    /// sent before dying is in the log), so that no acknowledgement is left out of the evidence. The
    /// stream not ending is the harness's own machinery failing.
    pub async fn drain(&mut self, deadline: Duration) -> Result<(), EnvError> {
        let log = self.log.clone();
        let check = || std::future::ready(Ok::<_, EnvError>(log.lock().unwrap().eof.map(|_| ())));
        wait::until("the end of the probe's stream after the guest stopped", deadline, check, self.next_line())
            .await
            .map_err(|e| from_wait(&self.site, Cause::Harness, e))
    }

    /// Waits until the witness has read what the guest sent before it was frozen: no new line for `quiet`
    /// (a frozen guest sends nothing more; what it sent before is readable at once), at most `deadline`.
    pub async fn settle(&mut self, quiet: Duration, deadline: Duration) {
        let t0 = Wt::now();
        let rx = self.changed.clone();
        let mut rx = rx.lock().await;
        while Wt::now().since(t0) < deadline {
            match tokio::time::timeout(quiet, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return,
            }
        }
    }

    /// The channel's far end is gone without closing it (a black-holed site: nothing more can arrive): the
    /// witness stops reading, and what it read is the evidence. An acknowledgement that never arrived was
    /// never acknowledged to anyone; a record on disk without one is indeterminate, and more than one per
    /// boot makes the verdict inconclusive, so cutting the stream cannot hide a loss.
    pub fn cut(&mut self) {
        self.reader.abort();
        let mut g = self.log.lock().unwrap();
        if g.eof.is_none() {
            g.eof = Some(Wt::now());
            g.cut = true;
        }
    }

    /// Hard stop (power loss of its site, or teardown).
    pub async fn kill(&mut self) {
        self.machine.kill().await;
        self.writer = None;
    }

    pub fn snapshot(&self) -> BootLog {
        self.log.lock().unwrap().clone()
    }

    /// The tag of this boot's writer (once the probe said hello).
    fn tag(&self) -> Option<u64> {
        self.log.lock().unwrap().boot_id().and_then(boot_tag_hex)
    }

    /// The highest sequence this boot acknowledged so far.
    fn max_acked(&self) -> Option<u64> {
        self.log.lock().unwrap().acks.iter().map(|a| a.0).max()
    }
}

/// One VM of the environment: its rate, the boot running it (if any), its earlier boots.
struct Vm {
    rate: u32,
    boot: Option<Boot>,
    /// Logs of the VM's earlier boots, each read to its end (each writer boot's acks stay evidence).
    boots: Vec<BootLog>,
    /// Boots left running on a site the harness could not reach (frozen), still watched.
    abandoned: Vec<Boot>,
}

/// The Workload port over any launcher.
pub struct ProbeWorkload {
    launcher: Box<dyn Launcher>,
    budgets: Budgets,
    bus: Bus,
    vms: BTreeMap<String, Vm>,
    /// The disks of a VM of several disks, each by every one of its disks (one machine boots them all).
    machines: BTreeMap<String, Vec<String>>,
}

impl ProbeWorkload {
    pub fn new(launcher: Box<dyn Launcher>, budgets: Budgets, bus: Bus) -> ProbeWorkload {
        ProbeWorkload { launcher, budgets, bus, vms: BTreeMap::new(), machines: BTreeMap::new() }
    }

    /// Registers a VM that is not running yet (benchmarks and tests boot it by hand).
    pub fn start_stopped(&mut self, vm: &str, rate: u32) {
        self.vms.insert(vm.to_string(), Vm { rate, boot: None, boots: vec![], abandoned: vec![] });
    }

    fn vm(&mut self, vm: &str) -> Result<&mut Vm, EnvError> {
        self.vms.get_mut(vm).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} in this scenario")))
    }

    fn vm_ref(&self, vm: &str) -> Result<&Vm, EnvError> {
        self.vms.get(vm).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} in this scenario")))
    }

    /// The VM's running boot, or an error saying it is not running.
    pub fn running(&mut self, vm: &str) -> Result<&mut Boot, EnvError> {
        self.vm(vm)?.boot.as_mut().ok_or_else(|| EnvError::Usage(format!("VM {vm} is not running")))
    }

    /// Boots the VM on `site` in `mode` from `volume`, reading the disk up to `scan_limit` records.
    pub async fn boot(&mut self, vm: &str, site: &str, volume: &Volume, mode: Mode, scan_limit: u64) -> Result<(), EnvError> {
        let rate = self.vm_ref(vm)?.rate;
        if let Some(b) = self.vm(vm)?.boot.as_mut() {
            if b.machine.alive().await {
                return Err(EnvError::Usage(format!("VM {vm} is already running on site {}", b.site)));
            }
        }
        let launched = self.launcher.launch(&Launch { vm, site, volume, mode, rate, scan_limit }).await?;
        let boot = Boot::witness(launched, &self.bus, vm, site, mode);
        self.vm(vm)?.boot = Some(boot);
        Ok(())
    }

    /// The other disks of `vm`'s machine (none for a VM of one disk).
    fn siblings(&self, vm: &str) -> Vec<String> {
        self.machines.get(vm).map(|d| d.iter().filter(|d| *d != vm).cloned().collect()).unwrap_or_default()
    }

    /// Asks every other disk of `vm`'s machine for its STOP record (the machine powers off once all wrote
    /// theirs), so a graceful stop of one disk cannot wait on the others' writers.
    async fn ask_siblings_to_stop(&mut self, vm: &str) {
        for d in self.siblings(vm) {
            if let Some(b) = self.vms.get_mut(&d).and_then(|v| v.boot.as_mut()) {
                b.ask_stop().await;
            }
        }
    }

    /// Boots the disks of `boots` (one VM's, or VMs of one disk each) in `mode`: the disks of one machine
    /// by one launch, the others one by one. Each disk's result is its own.
    async fn boot_units(&mut self, boots: &[(BootOf<'_>, u64)], mode: Mode) -> Vec<Result<(), EnvError>> {
        let mut out: Vec<Option<Result<(), EnvError>>> = boots.iter().map(|_| None).collect();
        for i in 0..boots.len() {
            if out[i].is_some() {
                continue;
            }
            let (b, limit) = boots[i];
            let together: Vec<usize> = match self.machines.get(b.vm) {
                Some(disks) => (i..boots.len()).filter(|&j| disks.iter().any(|d| d == boots[j].0.vm)).collect(),
                None => vec![i],
            };
            if together.len() == 1 {
                out[i] = Some(self.boot(b.vm, b.site, b.volume, mode, limit).await);
                continue;
            }
            let r = self.boot_together(&together.iter().map(|&j| boots[j]).collect::<Vec<_>>(), mode).await;
            for &j in &together {
                out[j] = Some(r.as_ref().map(|_| ()).map_err(|e| e.again()));
            }
        }
        out.into_iter().map(|r| r.unwrap_or_else(|| Err(EnvError::Usage("a disk was not booted".into())))).collect()
    }

    /// One machine for the disks of one VM (same site), each disk's stream witnessed on its own.
    async fn boot_together(&mut self, boots: &[(BootOf<'_>, u64)], mode: Mode) -> Result<(), EnvError> {
        let mut launches = vec![];
        for (b, limit) in boots {
            let rate = self.vm_ref(b.vm)?.rate;
            if let Some(x) = self.vm(b.vm)?.boot.as_mut() {
                if x.machine.alive().await {
                    return Err(EnvError::Usage(format!("VM {} is already running on site {}", b.vm, x.site)));
                }
            }
            launches.push(Launch { vm: b.vm, site: b.site, volume: b.volume, mode, rate, scan_limit: *limit });
        }
        let launched = self.launcher.launch_group(&launches).await?;
        for ((b, _), l) in boots.iter().zip(launched) {
            let boot = Boot::witness(l, &self.bus, b.vm, b.site, mode);
            self.vm(b.vm)?.boot = Some(boot);
        }
        Ok(())
    }

    /// Moves the VM's current boot log into its history once the witness has read its stream to the end
    /// (killing it first if it still runs).
    pub async fn archive(&mut self, vm: &str) -> Result<(), EnvError> {
        let v = self.vm(vm)?;
        if let Some(mut b) = v.boot.take() {
            if b.machine.alive().await {
                b.kill().await;
            }
            let drained = b.drain(Duration::from_secs(10)).await;
            v.boots.push(b.snapshot());
            drained?;
        }
        Ok(())
    }

    /// How far a scan reads: past the newest acknowledged record, with margin, within the disk.
    fn scan_limit(&self, vm: &str) -> u64 {
        let max = self
            .vms
            .get(vm)
            .into_iter()
            .flat_map(|v| v.boots.iter().flat_map(|b| b.acks.iter().map(|a| a.0)).chain(v.abandoned.iter().filter_map(|p| p.max_acked())))
            .max()
            .unwrap_or(0);
        (max + 1 + 2048).min(self.launcher.disk_records() + 1)
    }

    /// A resumed boot's way back into service: the probe up, its recovery scan, its first new write.
    async fn served(&mut self, vm: &str, deadline: wait::Deadline) -> Result<Served, EnvError> {
        let b = self.running(vm)?;
        let booted = b.wait_for("the probe to start", deadline, |g| g.hello.as_ref().map(|h| h.0)).await?;
        let (recovered, scan) = b.wait_for("the recovery scan", deadline, |g| g.scan.clone()).await?;
        let serving = b.wait_for("the first new acknowledged write", deadline, |g| g.acks.first().map(|a| a.1)).await?;
        Ok(Served { booted, recovered, scan, serving })
    }

    /// A graceful stop of the running boot, if there is one still running.
    async fn stop_running(&mut self, vm: &str) -> Result<(), EnvError> {
        let deadline = self.budgets.deadline(crate::config::Budget::GracefulStop);
        self.ask_siblings_to_stop(vm).await;
        if let Some(b) = self.vm(vm)?.boot.as_mut() {
            if b.machine.alive().await {
                b.graceful_stop(deadline).await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Workload for ProbeWorkload {
    async fn start(&mut self, vm: &str, site: &str, volume: &Volume, rate: u32) -> Result<(), EnvError> {
        self.start_stopped(vm, rate);
        let limit = self.launcher.disk_records() + 1;
        self.boot(vm, site, volume, Mode::Write, limit).await?;
        let boot = self.budgets.deadline(crate::config::Budget::Boot);
        self.running(vm)?.wait_for("the first acknowledged write", boot, |g| g.acks.first().map(|_| ())).await
    }

    async fn wait_acks(&mut self, vm: &str, n: u64, deadline: Duration) -> Result<(), EnvError> {
        let b = self.running(vm)?;
        let want = (b.snapshot().acks.len() as u64).max(n);
        b.wait_for(&format!("{want} acknowledged writes"), deadline, |g| (g.acks.len() as u64 >= want).then_some(())).await
    }

    fn writing(&self, vm: &str) -> Result<bool, EnvError> {
        Ok(self.vm_ref(vm)?.boot.as_ref().is_some_and(|b| b.log.lock().unwrap().eof.is_none()))
    }

    fn rate(&self, vm: &str) -> Result<u32, EnvError> {
        Ok(self.vm_ref(vm)?.rate)
    }

    async fn graceful_stop(&mut self, vm: &str) -> Result<Stopped, EnvError> {
        let deadline = self.budgets.deadline(crate::config::Budget::GracefulStop);
        self.ask_siblings_to_stop(vm).await;
        let (at, seq) = self.running(vm)?.graceful_stop(deadline).await?;
        self.archive(vm).await?;
        Ok(Stopped { at, seq })
    }

    /// The VM's site is lost: killed if it still runs, its stream read to the end, or, when the channel's
    /// far end vanished without closing it (a black-holed site), cut where it stands (see [`Boot::cut`]).
    async fn halt(&mut self, vm: &str) -> Result<(), EnvError> {
        let v = self.vm(vm)?;
        if let Some(mut b) = v.boot.take() {
            if b.machine.alive().await {
                b.kill().await;
            }
            if b.drain(Duration::from_secs(3)).await.is_err() {
                tracing::warn!("VM {vm}: the probe's stream from lost site {} did not end: cut, evidence as read", b.site);
                b.cut();
            }
            v.boots.push(b.snapshot());
        }
        Ok(())
    }

    async fn resume(&mut self, vm: &str, site: &str, volume: &Volume) -> Result<Served, EnvError> {
        self.archive(vm).await?;
        let limit = self.scan_limit(vm);
        let boot = self.budgets.deadline(crate::config::Budget::Boot);
        self.boot(vm, site, volume, Mode::Resume, limit).await?;
        self.served(vm, boot).await
    }

    /// Every VM launched first, then each awaited: the guests boot side by side (each one's times are read
    /// off its own stream, so waiting on them in turn measures nothing late).
    async fn start_all(&mut self, vms: &[BootOf<'_>], rate: u32) -> Vec<Result<(), EnvError>> {
        let limit = self.launcher.disk_records() + 1;
        for b in vms {
            self.start_stopped(b.vm, rate);
        }
        let boots: Vec<(BootOf<'_>, u64)> = vms.iter().map(|b| (*b, limit)).collect();
        let launched = self.boot_units(&boots, Mode::Write).await;
        let deadline = self.budgets.deadline(crate::config::Budget::Boot);
        let mut out = vec![];
        for (b, l) in vms.iter().zip(launched) {
            out.push(match l {
                Ok(()) => match self.running(b.vm) {
                    Ok(r) => r.wait_for("the first acknowledged write", deadline, |g| g.acks.first().map(|_| ())).await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            });
        }
        out
    }

    /// As [`Workload::resume`], every VM launched before any is awaited.
    async fn resume_all(&mut self, vms: &[BootOf<'_>]) -> Vec<Result<Served, EnvError>> {
        let mut archived = vec![];
        for b in vms {
            archived.push(self.archive(b.vm).await);
        }
        let ready: Vec<(BootOf<'_>, u64)> = vms.iter().zip(&archived).filter(|(_, a)| a.is_ok()).map(|(b, _)| (*b, self.scan_limit(b.vm))).collect();
        let mut booted = self.boot_units(&ready, Mode::Resume).await.into_iter();
        let launched: Vec<Result<(), EnvError>> = archived.into_iter().map(|a| a.and_then(|()| booted.next().unwrap_or(Ok(())))).collect();
        let deadline = self.budgets.deadline(crate::config::Budget::Boot);
        let mut out = vec![];
        for (b, l) in vms.iter().zip(launched) {
            let served = async {
                l?;
                self.served(b.vm, deadline).await
            }
            .await;
            out.push(served);
        }
        out
    }

    fn one_machine(&mut self, disks: &[String]) -> Result<(), EnvError> {
        for d in disks {
            self.machines.insert(d.clone(), disks.to_vec());
        }
        Ok(())
    }

    async fn abandon(&mut self, vm: &str) -> Result<u64, EnvError> {
        let v = self.vm(vm)?;
        let mut b = v.boot.take().ok_or_else(|| EnvError::Usage(format!("VM {vm} is not running: there is nothing to leave behind")))?;
        // the evidence is frozen next: every line the guest sent before its site froze is read first
        b.settle(Duration::from_millis(300), Duration::from_secs(3)).await;
        let tag = b.tag().ok_or_else(|| vm_err(vm, &b.site, Cause::System, "the boot left behind never said hello"))?;
        v.abandoned.push(b);
        Ok(tag)
    }

    async fn retire(&mut self, vm: &str, site: &str) {
        if let Ok(v) = self.vm(vm) {
            let (gone, kept): (Vec<Boot>, Vec<Boot>) = std::mem::take(&mut v.abandoned).into_iter().partition(|b| b.site == site);
            v.abandoned = kept;
            for mut b in gone {
                b.kill().await;
                let _ = b.drain(Duration::from_secs(10)).await;
                v.boots.push(b.snapshot());
            }
        }
    }

    fn abandoned_alive(&self, vm: &str, tag: u64) -> Result<bool, EnvError> {
        let b = self.vm_ref(vm)?.abandoned.iter().find(|b| b.tag() == Some(tag));
        // its stream to the witness still open: the guest runs
        Ok(b.is_some_and(|b| b.log.lock().unwrap().eof.is_none()))
    }

    async fn verify(&mut self, vm: &str, site: &str, volume: &Volume) -> Result<ScanReport, EnvError> {
        self.stop_running(vm).await?;
        self.archive(vm).await?;
        let limit = self.launcher.disk_records() + 1;
        let boot = self.budgets.deadline(crate::config::Budget::Boot);
        self.boot(vm, site, volume, Mode::Verify, limit).await?;
        let b = self.running(vm)?;
        let (_, scan) = b.wait_for("the verify scan", boot, |g| g.scan.clone()).await?;
        b.wait_poweroff(boot.after).await?;
        self.archive(vm).await?;
        Ok(scan)
    }

    fn history(&self, vm: &str, since: Option<Wt>) -> Result<History, EnvError> {
        let v = self.vm_ref(vm)?;
        let mut boots = v.boots.clone();
        boots.extend(v.abandoned.iter().map(|b| b.snapshot()));
        boots.extend(v.boot.as_ref().map(|b| b.snapshot()));
        Ok(history_since(&boots, since))
    }

    async fn damage(&mut self, vm: &str, site: &str, volume: &Volume, seq: u64) -> Result<ScanReport, EnvError> {
        if seq == 0 {
            return Err(EnvError::Usage("records start at 1: there is no record 0 to damage".into()));
        }
        self.stop_running(vm).await?;
        self.archive(vm).await?;
        let boot = self.budgets.deadline(crate::config::Budget::Boot);
        self.boot(vm, site, volume, Mode::Corrupt(seq), 0).await?;
        let b = self.running(vm)?;
        b.wait_for("the record to be damaged", boot, |g| g.corrupted).await?;
        b.wait_poweroff(boot.after).await?;
        self.verify(vm, site, volume).await
    }

    async fn stop(&mut self, vm: &str) {
        let _ = self.archive(vm).await;
        self.launcher.forget(vm).await;
        // boots left behind end with the scenario: killed (frozen or not), read to their end, kept as evidence
        if let Ok(v) = self.vm(vm) {
            for mut b in std::mem::take(&mut v.abandoned) {
                b.kill().await;
                let _ = b.drain(Duration::from_secs(10)).await;
                v.boots.push(b.snapshot());
            }
        }
    }

    fn rss_bytes(&self) -> u64 {
        // a VM of several disks is one machine: counted once, through its first disk
        let first_of_its_machine = |name: &String| self.machines.get(name).is_none_or(|disks| disks.first() == Some(name));
        self.vms.iter().filter(|(name, _)| first_of_its_machine(name)).filter_map(|(_, v)| v.boot.as_ref().map(|b| b.machine.rss_bytes())).sum()
    }

    fn consoles(&self, vm: &str) -> Vec<std::path::PathBuf> {
        self.launcher.consoles(vm)
    }

    async fn shutdown(&mut self) {
        for v in self.vms.values_mut() {
            if let Some(b) = v.boot.as_mut() {
                b.kill().await;
            }
            for b in v.abandoned.iter_mut() {
                b.kill().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_cut_off_by_the_end_of_the_stream_is_not_a_line() {
        assert_eq!(whole_line(b"ACK 12 1700000000 800\n").as_deref(), Some("ACK 12 1700000000 800"));
        assert_eq!(whole_line(b"HELLO write\r\n").as_deref(), Some("HELLO write"));
        assert_eq!(whole_line(b"ACK 13 17000"), None);
        assert_eq!(whole_line(b"\xff\xfe\n").as_deref(), Some("\u{fffd}\u{fffd}"));
    }

    /// A guest killed while it sent a line: the lines before it are evidence, the cut-off one is kept
    /// apart (never a garbled line that makes the verdict inconclusive, never an acknowledgement).
    #[tokio::test]
    async fn the_witness_keeps_a_cut_off_last_line_apart() {
        struct Gone;
        #[async_trait]
        impl Machine for Gone {
            async fn alive(&mut self) -> bool {
                false
            }
            async fn kill(&mut self) {}
            async fn wait_exit(&mut self, _: Duration) -> bool {
                true
            }
            fn rss_bytes(&self) -> u64 {
                0
            }
            fn console_tail(&self, _: usize) -> String {
                String::new()
            }
        }
        let boot = "00112233445566778899aabbccddeeff";
        let hello = Msg::Hello { mode: "write".into(), boot: boot.into(), blocks: 100 };
        let ack = Msg::Ack { seq: 1, wall_ns: 5, lat_us: 7 };
        let text = format!("{hello}\n{ack}\nnot a message\n{}", &format!("{}", Msg::Ack { seq: 2, wall_ns: 6, lat_us: 7 })[..6]);
        let (mut host_end, guest_end) = tokio::io::duplex(4096);
        let (rd, wr) = tokio::io::split(guest_end);
        let l = Launched { machine: Box::new(Gone), reader: Box::new(rd), writer: Box::new(wr), started: Wt::now() };
        let mut b = Boot::witness(l, &Bus::new(), "vm0", "a", Mode::Write);
        host_end.write_all(text.as_bytes()).await.unwrap();
        drop(host_end);
        b.drain(Duration::from_secs(5)).await.unwrap();
        let g = b.snapshot();
        assert_eq!(g.acks.iter().map(|a| a.0).collect::<Vec<_>>(), [1]);
        assert_eq!(g.garbled, ["not a message"]);
        assert!(g.cut_tail.as_deref().is_some_and(|t| !t.is_empty() && !t.contains('\n')), "{:?}", g.cut_tail);
    }
}
