//! The VM: QEMU (TCG) inside a site's namespace, booting the harness's initramfs with the probe as init, its
//! virtio disk on `rbd:` of the site's image, and the probe's port on a unix-socket chardev that the harness
//! (the witness) reads. Every line the probe sends is stamped with the witness clock on arrival.

use super::site::SiteRef;
use super::Assets;
use crate::clock::Wt;
use crate::config::{Budgets, LabSpec};
use crate::error::{from_wait, Cause, EnvError};
use crate::events::{Bus, Event};
use crate::oracle::{Ack, History};
use crate::ports::{Damaged, Served, Stopped, Volume, Workload};
use crate::procs::{self, Daemon};
use crate::wait;
use async_trait::async_trait;
use dr_probe::{boot_tag_hex, Msg, ScanAssembler, ScanReport, PORT_NAME};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
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
    fn cmdline(self) -> String {
        match self {
            Mode::Write => "drprobe.mode=write".into(),
            Mode::Verify => "drprobe.mode=verify".into(),
            Mode::Resume => "drprobe.mode=resume".into(),
            Mode::Corrupt(seq) => format!("drprobe.mode=corrupt drprobe.seq={seq}"),
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
    pub errors: Vec<String>,
    pub eof: Option<Wt>,
    /// (n, witness time) of PONG answers.
    pub pongs: Vec<(u64, Wt)>,
    /// Lines from the probe that could not be parsed (kept: an ack among them would be missing evidence).
    pub garbled: Vec<String>,
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
        h.garbled += b.garbled.len();
        h.latencies_us.extend(&b.ack_lat_us);
    }
    h
}

pub struct VmProcess {
    pub vm: String,
    pub site: String,
    pub mode: Mode,
    pub qemu: Daemon,
    pub log: Arc<Mutex<BootLog>>,
    /// Bumped on every line from the probe (u64::MAX at the end of its stream).
    changed: Arc<tokio::sync::Mutex<watch::Receiver<u64>>>,
    writer: Option<OwnedWriteHalf>,
    pub console: PathBuf,
}

pub struct VmSpec<'a> {
    pub bus: &'a Bus,
    pub vm: &'a str,
    pub site: &'a str,
    pub ns: &'a str,
    pub conf: &'a Path,
    pub image: &'a str,
    pub dir: &'a Path,
    pub memory_mib: u64,
    pub rate: u32,
    pub scan_limit: u64,
}

fn vm_err(vm: &str, site: &str, cause: Cause, detail: impl Into<String>) -> EnvError {
    EnvError::Vm { vm: vm.into(), site: site.into(), detail: detail.into(), cause }
}

impl VmProcess {
    /// Starts QEMU and connects the witness to the probe's port.
    pub async fn boot(a: &Assets, initramfs: &Path, s: &VmSpec<'_>, mode: Mode) -> Result<VmProcess, EnvError> {
        let tag = match mode {
            Mode::Write => "write",
            Mode::Verify => "verify",
            Mode::Resume => "resume",
            Mode::Corrupt(_) => "corrupt",
        };
        let n = std::fs::read_dir(s.dir).map(|d| d.count()).unwrap_or(0);
        let base = s.dir.join(format!("{}-{}-{n}-{tag}", s.vm, s.site));
        let sock = base.with_extension("sock");
        let console = base.with_extension("console");
        let _ = std::fs::remove_file(&sock);
        let q = &a.qemu_root;
        let mut c = procs::in_netns(s.ns, &a.qemu_bin.display().to_string());
        c.env("QEMU_MODULE_DIR", a.qemu_modules());
        let append = format!(
            "console=ttyS0 panic=-1 quiet {} drprobe.rate={} drprobe.limit={}",
            mode.cmdline(),
            s.rate,
            s.scan_limit
        );
        let drive = format!("file=rbd:rbd/{}:conf={}:id=admin,format=raw,if=none,id=disk0,cache=none", s.image, s.conf.display());
        c.args(["-L", &q.join("usr/share/qemu").display().to_string(), "-L", &q.join("usr/share/seabios").display().to_string()]);
        c.args(["-machine", "pc", "-accel", "tcg,tb-size=32", "-cpu", "qemu64", "-smp", "1", "-m", &format!("{}M", s.memory_mib)]);
        c.args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]);
        c.args(["-kernel", &a.kernel.display().to_string(), "-initrd", &initramfs.display().to_string(), "-append", &append]);
        c.args(["-serial", &format!("file:{}", console.display())]);
        c.args(["-drive", &drive, "-device", "virtio-blk-pci,drive=disk0"]);
        c.args(["-device", "virtio-serial-pci", "-chardev", &format!("socket,id=probe,path={},server=on,wait=on", sock.display())]);
        c.args(["-device", &format!("virtserialport,chardev=probe,name={PORT_NAME}")]);
        let started = Wt::now();
        let mut qemu = Daemon::spawn(&format!("qemu-{}", s.vm), c, &base.with_extension("qemu.log"))
            .map_err(|e| vm_err(s.vm, s.site, Cause::Harness, format!("failed to start QEMU ({}): {e}", a.qemu_bin.display())))?;
        // QEMU waits (wait=on) for the witness before it starts the guest: no line can be missed.
        let qemu_cell = std::sync::Mutex::new(&mut qemu);
        let check = || async {
            if let Ok(st) = UnixStream::connect(&sock).await {
                return Ok(Some(st));
            }
            let mut q = qemu_cell.lock().unwrap();
            if !q.alive() {
                return Err(vm_err(s.vm, s.site, Cause::Harness, format!("QEMU exited at start: {}", q.log_tail(3))));
            }
            Ok(None)
        };
        let connected = wait::until("QEMU's probe socket", Duration::from_secs(10), check, wait::every(Duration::from_millis(25))).await;
        let stream = match connected {
            Ok(st) => st,
            Err(e) => {
                qemu.kill().await;
                return Err(match e {
                    wait::WaitError::Failed(e) => e,
                    wait::WaitError::Timeout { .. } => vm_err(s.vm, s.site, Cause::Harness, "QEMU's probe socket did not appear within 10s"),
                });
            }
        };
        let (rd, wr) = stream.into_split();
        let log = Arc::new(Mutex::new(BootLog { started, site: s.site.to_string(), mode: tag.to_string(), ..Default::default() }));
        let (tx, rx) = watch::channel(0u64);
        let l2 = log.clone();
        let vm_name = s.vm.to_string();
        let bus = s.bus.clone();
        bus.publish_at(started, Event::BootRequested { vm: vm_name.clone(), site: s.site.to_string(), mode: tag.to_string() });
        tokio::spawn(async move {
            let mut lines = BufReader::new(rd).lines();
            let mut asm = ScanAssembler::default();
            let mut n = 0u64;
            while let Ok(Some(line)) = lines.next_line().await {
                let t = Wt::now();
                let Some(m) = Msg::parse(&line) else {
                    // the kernel's own console lines never come over this port; anything unreadable is kept
                    if !line.trim().is_empty() {
                        l2.lock().unwrap().garbled.push(line);
                    }
                    continue;
                };
                {
                    let mut g = l2.lock().unwrap();
                    if let Some(r) = asm.feed(&m) {
                        let (highest_contiguous, ranges, corrupt, stop) = (r.highest_contiguous, r.ranges.len(), r.corrupt.len(), r.stop);
                        bus.publish_at(t, Event::Scan { vm: vm_name.clone(), highest_contiguous, ranges, corrupt, stop });
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
                        Msg::Error { msg } => g.errors.push(msg),
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
        Ok(VmProcess {
            vm: s.vm.into(),
            site: s.site.into(),
            mode,
            qemu,
            log,
            changed: Arc::new(tokio::sync::Mutex::new(rx)),
            writer: Some(wr),
            console,
        })
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
    pub async fn wait_for<T>(&mut self, what: &str, deadline: Duration, cond: impl Fn(&BootLog) -> Option<T>) -> Result<T, EnvError> {
        let log = self.log.clone();
        let (vm, site, console) = (self.vm.clone(), self.site.clone(), self.console.clone());
        let check = || {
            let g = log.lock().unwrap();
            let r = if let Some(v) = cond(&g) {
                Ok(Some(v))
            } else if let Some(e) = g.errors.first() {
                Err(vm_err(&vm, &site, Cause::System, format!("probe reported an error while waiting for {what}: {e}")))
            } else if g.eof.is_some() {
                Err(vm_err(&vm, &site, Cause::System, format!("the guest went away before {what} (console: {})", procs::tail(&console, 3))))
            } else {
                Ok(None)
            };
            std::future::ready(r)
        };
        wait::until(what, deadline, check, self.next_line()).await.map_err(|e| match e {
            wait::WaitError::Timeout { .. } => self.err(Cause::System, format!("{what} did not happen within {deadline:?} (console: {})", procs::tail(&self.console, 3))),
            wait::WaitError::Failed(e) => e,
        })
    }

    /// Graceful shutdown: asks the probe to stop, waits for the durable STOP record and QEMU's exit.
    pub async fn graceful_stop(&mut self, deadline: Duration) -> Result<(Wt, u64), EnvError> {
        if let Some(w) = self.writer.as_mut() {
            w.write_all(b"stop\n").await.map_err(|e| vm_err(&self.vm, &self.site, Cause::System, format!("failed to send stop: {e}")))?;
        }
        let r = self.wait_for("the STOP record", deadline, |g| g.stopped).await?;
        if !self.qemu.wait_exit(deadline).await {
            self.qemu.kill().await;
            return Err(self.err(Cause::System, "QEMU did not power off after the STOP record"));
        }
        Ok(r)
    }

    /// Round trip over the probe's port: host "ping" to guest PONG, as the witness sees it.
    pub async fn ping(&mut self, n: u64) -> Result<Duration, EnvError> {
        let t0 = Wt::now();
        if let Some(w) = self.writer.as_mut() {
            w.write_all(format!("ping {n}\n").as_bytes()).await.map_err(|e| vm_err(&self.vm, &self.site, Cause::Harness, format!("failed to send ping: {e}")))?;
        }
        let at = self.wait_for("a PONG", Duration::from_secs(5), |g| g.pongs.iter().find(|p| p.0 == n).map(|p| p.1)).await?;
        Ok(at.since(t0))
    }

    /// Waits for the guest to power off by itself (verify and corrupt modes).
    pub async fn wait_poweroff(&mut self, deadline: Duration) -> Result<(), EnvError> {
        if self.qemu.wait_exit(deadline).await {
            Ok(())
        } else {
            self.qemu.kill().await;
            Err(self.err(Cause::System, format!("the guest did not power off within {deadline:?}")))
        }
    }

    /// Waits until the witness has read the probe's stream to its end (QEMU is gone and every line it
    /// sent before dying is in the log), so that no acknowledgement is left out of the evidence. The
    /// stream not ending is the harness's own machinery failing.
    pub async fn drain(&mut self, deadline: Duration) -> Result<(), EnvError> {
        let log = self.log.clone();
        let check = || std::future::ready(Ok::<_, EnvError>(log.lock().unwrap().eof.map(|_| ())));
        wait::until("the end of the probe's stream after QEMU stopped", deadline, check, self.next_line()).await.map_err(|e| from_wait(&self.site, Cause::Harness, e))
    }

    /// Hard stop (power loss of its site, or teardown).
    pub async fn kill(&mut self) {
        self.qemu.kill().await;
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

/// One VM of the environment: its rate, the process running it (if any), its earlier boots.
struct Vm {
    rate: u32,
    process: Option<VmProcess>,
    /// Logs of the VM's earlier boots, each read to its end (each writer boot's acks stay evidence).
    boots: Vec<BootLog>,
    /// Boots left running on a site the harness could not reach (frozen), still watched.
    abandoned: Vec<VmProcess>,
}

/// The lab's workload: QEMU (TCG) in a site's namespace, the probe as init, the disk on `rbd:` of the
/// site's cluster.
pub struct QemuWorkload {
    assets: Assets,
    initramfs: PathBuf,
    dir: PathBuf,
    spec: LabSpec,
    budgets: Budgets,
    sites: BTreeMap<String, SiteRef>,
    bus: Bus,
    vms: BTreeMap<String, Vm>,
}

impl QemuWorkload {
    pub fn new(assets: Assets, initramfs: PathBuf, dir: PathBuf, spec: LabSpec, budgets: Budgets, sites: BTreeMap<String, SiteRef>, bus: Bus) -> QemuWorkload {
        QemuWorkload { assets, initramfs, dir, spec, budgets, sites, bus, vms: BTreeMap::new() }
    }

    /// Registers a VM that is not running yet (the lab's own benchmarks boot it by hand).
    pub fn start_stopped(&mut self, vm: &str, rate: u32) {
        self.vms.insert(vm.to_string(), Vm { rate, process: None, boots: vec![], abandoned: vec![] });
    }

    fn vm(&mut self, vm: &str) -> Result<&mut Vm, EnvError> {
        self.vms.get_mut(vm).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} in this scenario")))
    }

    /// The VM's running process, or an error saying it is not running.
    pub fn running(&mut self, vm: &str) -> Result<&mut VmProcess, EnvError> {
        self.vm(vm)?.process.as_mut().ok_or_else(|| EnvError::Usage(format!("VM {vm} is not running")))
    }

    /// Boots the VM on `site` in `mode` from `volume`, reading the disk up to `scan_limit` records.
    pub async fn boot(&mut self, vm: &str, site: &str, volume: &Volume, mode: Mode, scan_limit: u64) -> Result<(), EnvError> {
        let s = self.sites.get(site).ok_or_else(|| EnvError::Usage(format!("site {site} has no place for VMs in this lab")))?.clone();
        std::fs::create_dir_all(&self.dir).map_err(|source| EnvError::Io { what: "create the VM directory".into(), source })?;
        let (assets, initramfs, dir, bus, memory_mib) = (self.assets.clone(), self.initramfs.clone(), self.dir.clone(), self.bus.clone(), self.spec.memory.0 >> 20);
        let v = self.vm(vm)?;
        if let Some(p) = v.process.as_mut() {
            if p.qemu.alive() {
                return Err(EnvError::Usage(format!("VM {vm} is already running on site {}", p.site)));
            }
        }
        let conf = s.conf();
        let spec = VmSpec { bus: &bus, vm, site: &s.name, ns: &s.ns, conf: &conf, image: &volume.name, dir: &dir, memory_mib, rate: v.rate, scan_limit };
        v.process = Some(VmProcess::boot(&assets, &initramfs, &spec, mode).await?);
        Ok(())
    }

    /// Moves the VM's current boot log into its history once the witness has read its stream to the end
    /// (killing it first if it still runs).
    pub async fn archive(&mut self, vm: &str) -> Result<(), EnvError> {
        let v = self.vm(vm)?;
        if let Some(mut p) = v.process.take() {
            if p.qemu.alive() {
                p.kill().await;
            }
            let drained = p.drain(Duration::from_secs(10)).await;
            v.boots.push(p.snapshot());
            drained?;
        }
        Ok(())
    }

    /// How far a scan reads: past the newest acknowledged record, with margin, within the disk.
    fn scan_limit(&self, vm: &str) -> u64 {
        let max = self.vms.get(vm).into_iter().flat_map(|v| v.boots.iter().flat_map(|b| b.acks.iter().map(|a| a.0)).chain(v.abandoned.iter().filter_map(|p| p.max_acked()))).max().unwrap_or(0);
        (max + 1 + 2048).min(self.spec.disk_records() + 1)
    }
}

#[async_trait]
impl Workload for QemuWorkload {
    async fn start(&mut self, vm: &str, site: &str, volume: &Volume, rate: u32) -> Result<(), EnvError> {
        self.vms.insert(vm.to_string(), Vm { rate, process: None, boots: vec![], abandoned: vec![] });
        let limit = self.spec.disk_records() + 1;
        self.boot(vm, site, volume, Mode::Write, limit).await?;
        let boot = self.budgets.boot.0;
        self.running(vm)?.wait_for("the first acknowledged write", boot, |g| g.acks.first().map(|_| ())).await
    }

    async fn wait_acks(&mut self, vm: &str, n: u64, deadline: Duration) -> Result<(), EnvError> {
        let p = self.running(vm)?;
        let want = (p.snapshot().acks.len() as u64).max(n);
        p.wait_for(&format!("{want} acknowledged writes"), deadline, |g| (g.acks.len() as u64 >= want).then_some(())).await
    }

    fn writing(&self, vm: &str) -> Result<bool, EnvError> {
        let v = self.vms.get(vm).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} in this scenario")))?;
        Ok(v.process.as_ref().is_some_and(|p| p.log.lock().unwrap().eof.is_none()))
    }

    fn rate(&self, vm: &str) -> Result<u32, EnvError> {
        self.vms.get(vm).map(|v| v.rate).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} in this scenario")))
    }

    async fn graceful_stop(&mut self, vm: &str) -> Result<Stopped, EnvError> {
        let deadline = self.budgets.graceful_stop.0;
        let (at, seq) = self.running(vm)?.graceful_stop(deadline).await?;
        self.archive(vm).await?;
        Ok(Stopped { at, seq })
    }

    async fn halt(&mut self, vm: &str) -> Result<(), EnvError> {
        self.archive(vm).await
    }

    async fn resume(&mut self, vm: &str, site: &str, volume: &Volume) -> Result<Served, EnvError> {
        self.archive(vm).await?;
        let limit = self.scan_limit(vm);
        let boot = self.budgets.boot.0;
        self.boot(vm, site, volume, Mode::Resume, limit).await?;
        let p = self.running(vm)?;
        let booted = p.wait_for("the probe to start", boot, |g| g.hello.as_ref().map(|h| h.0)).await?;
        let (recovered, scan) = p.wait_for("the recovery scan", boot, |g| g.scan.clone()).await?;
        let serving = p.wait_for("the first new acknowledged write", boot, |g| g.acks.first().map(|a| a.1)).await?;
        Ok(Served { booted, recovered, scan, serving })
    }

    async fn abandon(&mut self, vm: &str) -> Result<u64, EnvError> {
        let v = self.vm(vm)?;
        let p = v.process.take().ok_or_else(|| EnvError::Usage(format!("VM {vm} is not running: there is nothing to leave behind")))?;
        let tag = p.tag().ok_or_else(|| vm_err(vm, &p.site, Cause::System, "the boot left behind never said hello"))?;
        v.abandoned.push(p);
        Ok(tag)
    }

    fn abandoned_alive(&self, vm: &str, tag: u64) -> Result<bool, EnvError> {
        let v = self.vms.get(vm).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} in this scenario")))?;
        let p = v.abandoned.iter().find(|p| p.tag() == Some(tag));
        // its stream to the witness still open: QEMU runs
        Ok(p.is_some_and(|p| p.log.lock().unwrap().eof.is_none()))
    }

    async fn verify(&mut self, vm: &str, site: &str, volume: &Volume) -> Result<ScanReport, EnvError> {
        let budgets = self.budgets.clone();
        if let Some(p) = self.vm(vm)?.process.as_mut() {
            if p.qemu.alive() {
                p.graceful_stop(budgets.graceful_stop.0).await?;
            }
        }
        self.archive(vm).await?;
        let limit = self.spec.disk_records() + 1;
        self.boot(vm, site, volume, Mode::Verify, limit).await?;
        let p = self.running(vm)?;
        let (_, scan) = p.wait_for("the verify scan", budgets.boot.0, |g| g.scan.clone()).await?;
        p.wait_poweroff(budgets.boot.0).await?;
        self.archive(vm).await?;
        Ok(scan)
    }

    fn history(&self, vm: &str) -> Result<History, EnvError> {
        let v = self.vms.get(vm).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} in this scenario")))?;
        let mut boots = v.boots.clone();
        boots.extend(v.abandoned.iter().map(|p| p.snapshot()));
        boots.extend(v.process.as_ref().map(|p| p.snapshot()));
        Ok(history(&boots))
    }

    async fn damage(&mut self, vm: &str, site: &str, volume: &Volume, seq: u64) -> Result<Damaged, EnvError> {
        let budgets = self.budgets.clone();
        if let Some(p) = self.vm(vm)?.process.as_mut() {
            if p.qemu.alive() {
                p.graceful_stop(budgets.graceful_stop.0).await?;
            }
        }
        self.archive(vm).await?;
        self.boot(vm, site, volume, Mode::Corrupt(seq), 0).await?;
        let p = self.running(vm)?;
        p.wait_for("the record to be damaged", budgets.boot.0, |g| g.corrupted).await?;
        p.wait_poweroff(budgets.boot.0).await?;
        let scan = self.verify(vm, site, volume).await?;
        let boots = &self.vm(vm)?.boots;
        Ok(Damaged { scan, history: history(boots), last_stop: boots.iter().rev().find_map(|b| b.stopped.map(|s| s.1)) })
    }

    async fn stop(&mut self, vm: &str) {
        let _ = self.archive(vm).await;
        // boots left behind end with the scenario: killed (frozen or not), read to their end, kept as evidence
        if let Ok(v) = self.vm(vm) {
            for mut p in std::mem::take(&mut v.abandoned) {
                p.kill().await;
                let _ = p.drain(Duration::from_secs(10)).await;
                v.boots.push(p.snapshot());
            }
        }
    }

    fn rss_bytes(&self) -> u64 {
        self.vms.values().filter_map(|v| v.process.as_ref().map(|p| procs::hwm(p.qemu.pid))).sum()
    }

    async fn shutdown(&mut self) {
        for v in self.vms.values_mut() {
            if let Some(p) = v.process.as_mut() {
                p.kill().await;
            }
            for p in v.abandoned.iter_mut() {
                p.kill().await;
            }
        }
    }
}
