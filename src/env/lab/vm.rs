//! The lab's guests: QEMU (TCG) inside a site's namespace, booting the harness's initramfs with the probe as
//! init, its virtio disk on `rbd:` of the site's image, and the probe's port on a unix-socket chardev that
//! the harness (the witness) reads. The Workload port over it is `probe::ProbeWorkload`; this is its
//! launcher.

use super::site::SiteRef;
use super::Assets;
use crate::clock::Wt;
use crate::config::{Budgets, LabSpec};
pub use crate::env::probe::{history, BootLog, Mode};
use crate::env::probe::{Launch, Launched, Launcher, Machine, ProbeWorkload, SharedMachine};
use crate::error::{Cause, EnvError};
use crate::events::Bus;
use crate::procs::{self, Daemon};
use crate::wait;
use async_trait::async_trait;
use dr_probe::PORT_NAME;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::UnixStream;

/// The lab's workload: the probe's workload over QEMU.
pub type QemuWorkload = ProbeWorkload;

/// The lab's workload over `sites`.
pub fn qemu_workload(
    assets: Assets,
    initramfs: PathBuf,
    dir: PathBuf,
    spec: LabSpec,
    budgets: Budgets,
    sites: BTreeMap<String, SiteRef>,
    bus: Bus,
) -> QemuWorkload {
    ProbeWorkload::new(Box::new(QemuLauncher { assets, initramfs, dir, spec, sites }), budgets, bus)
}

fn vm_err(vm: &str, site: &str, cause: Cause, detail: impl Into<String>) -> EnvError {
    EnvError::Vm { vm: vm.into(), site: site.into(), detail: detail.into(), cause }
}

/// A QEMU process and its serial console file.
pub struct QemuMachine {
    qemu: Daemon,
    console: PathBuf,
}

#[async_trait]
impl Machine for QemuMachine {
    async fn alive(&mut self) -> bool {
        self.qemu.alive()
    }
    async fn kill(&mut self) {
        self.qemu.kill().await;
    }
    async fn wait_exit(&mut self, deadline: Duration) -> bool {
        self.qemu.wait_exit(deadline).await
    }
    fn rss_bytes(&self) -> u64 {
        procs::hwm(self.qemu.pid)
    }
    fn console_tail(&self, lines: usize) -> String {
        procs::tail(&self.console, lines)
    }
}

/// Boots QEMU in a site's namespace.
pub struct QemuLauncher {
    assets: Assets,
    initramfs: PathBuf,
    dir: PathBuf,
    spec: LabSpec,
    sites: BTreeMap<String, SiteRef>,
}

#[async_trait]
impl Launcher for QemuLauncher {
    fn disk_records(&self) -> u64 {
        self.spec.disk_records()
    }

    /// Every boot of `vm` (or of a disk of it: `vm0-disk1`) has its console file `<vm>-<site>-<n>-<mode>.console`.
    fn consoles(&self, vm: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<PathBuf>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|p: &PathBuf| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.strip_prefix(vm).is_some_and(|rest| rest.starts_with('-')) && name.ends_with(".console")
            })
            .collect();
        v.sort();
        v
    }

    /// Starts QEMU and connects the witness to the probe's port.
    async fn launch(&mut self, l: &Launch<'_>) -> Result<Launched, EnvError> {
        let (qemu, console, mut channels, started) = self.start_qemu(std::slice::from_ref(l)).await?;
        let (rd, wr) = channels.remove(0);
        Ok(Launched { machine: Box::new(QemuMachine { qemu, console }), reader: Box::new(rd), writer: Box::new(wr), started })
    }

    /// One QEMU with a drive per launch (serial `drdisk<i>`) and a probe port per drive (`dr.probe.<i>`):
    /// the disks of one VM, each its own writer; every channel sees the one machine.
    async fn launch_group(&mut self, ls: &[Launch<'_>]) -> Result<Vec<Launched>, EnvError> {
        if ls.len() == 1 {
            return Ok(vec![self.launch(&ls[0]).await?]);
        }
        let (qemu, console, channels, started) = self.start_qemu(ls).await?;
        let shared = SharedMachine::new(Box::new(QemuMachine { qemu, console }));
        Ok(channels.into_iter().map(|(rd, wr)| Launched { machine: Box::new(shared.clone()), reader: Box::new(rd), writer: Box::new(wr), started }).collect())
    }
}

type Channel = (tokio::net::unix::OwnedReadHalf, tokio::net::unix::OwnedWriteHalf);

impl QemuLauncher {
    /// Starts QEMU in the site's namespace with one drive and probe port per launch (the first launch names
    /// the VM, the site and the mode) and connects the witness to every port before the guest starts.
    async fn start_qemu(&mut self, ls: &[Launch<'_>]) -> Result<(Daemon, PathBuf, Vec<Channel>, Wt), EnvError> {
        let l = &ls[0];
        let site = self.sites.get(l.site).ok_or_else(|| EnvError::Usage(format!("site {} has no place for VMs in this lab", l.site)))?.clone();
        std::fs::create_dir_all(&self.dir).map_err(|source| EnvError::Io { what: "create the VM directory".into(), source })?;
        let conf = site.conf();
        let (a, initramfs, mode) = (&self.assets, &self.initramfs, l.mode);
        let s = Spec {
            vm: l.vm,
            site: &site.name,
            ns: &site.ns,
            conf: &conf,
            dir: &self.dir,
            memory_mib: self.spec.memory.0 >> 20,
            rate: l.rate,
            scan_limit: ls.iter().map(|l| l.scan_limit).max().unwrap_or(l.scan_limit),
        };
        let group = ls.len() > 1;
        let tag = mode.name();
        let n = std::fs::read_dir(s.dir).map(|d| d.count()).unwrap_or(0);
        let base = s.dir.join(format!("{}-{}-{n}-{tag}", s.vm, s.site));
        let socks: Vec<PathBuf> = (0..ls.len()).map(|i| if group { base.with_extension(format!("{i}.sock")) } else { base.with_extension("sock") }).collect();
        let console = base.with_extension("console");
        for sock in &socks {
            let _ = std::fs::remove_file(sock);
        }
        let q = &a.qemu_root;
        let mut c = procs::in_netns(s.ns, &a.qemu_bin.display().to_string());
        c.env("QEMU_MODULE_DIR", a.qemu_modules());
        // no_timer_check: under TCG on a loaded host (16 guests booting on 2 cores) the kernel's check that
        // the timer interrupt works through the IO-APIC can time out and panic the guest at 0.07 s
        let disks = if group { format!(" drprobe.disks={}", ls.len()) } else { String::new() };
        let append = format!("console=ttyS0 panic=-1 quiet no_timer_check {} drprobe.rate={} drprobe.limit={}{disks}", mode.cmdline(), s.rate, s.scan_limit);
        c.args(["-L", &q.join("usr/share/qemu").display().to_string(), "-L", &q.join("usr/share/seabios").display().to_string()]);
        c.args(["-machine", "pc", "-accel", "tcg,tb-size=32", "-cpu", "qemu64", "-smp", "1", "-m", &format!("{}M", s.memory_mib)]);
        c.args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]);
        c.args(["-kernel", &a.kernel.display().to_string(), "-initrd", &initramfs.display().to_string(), "-append", &append]);
        c.args(["-serial", &format!("file:{}", console.display())]);
        // the guest sees each disk's declared size (a clone of the golden image is larger: its pattern lies
        // after the guest's disk, where no guest write can reach); in a group each drive carries its index
        // as its serial, the probe finds its disks by it
        for (i, l) in ls.iter().enumerate() {
            let drive = format!(
                "file=rbd:rbd/{}:conf={}:id=admin,format=raw,size={},if=none,id=disk{i},cache=none",
                l.volume.name,
                s.conf.display(),
                self.spec.disk_size.0
            );
            let serial = if group { format!(",serial=drdisk{i}") } else { String::new() };
            c.args(["-drive", &drive, "-device", &format!("virtio-blk-pci,drive=disk{i}{serial}")]);
        }
        c.args(["-device", "virtio-serial-pci"]);
        for (i, sock) in socks.iter().enumerate() {
            let name = if group { format!("{PORT_NAME}.{i}") } else { PORT_NAME.to_string() };
            c.args(["-chardev", &format!("socket,id=probe{i},path={},server=on,wait=on", sock.display())]);
            c.args(["-device", &format!("virtserialport,chardev=probe{i},name={name}")]);
        }
        let started = Wt::now();
        let mut qemu = Daemon::spawn(&format!("qemu-{}", s.vm), c, &base.with_extension("qemu.log"))
            .map_err(|e| vm_err(s.vm, s.site, Cause::Harness, format!("failed to start QEMU ({}): {e}", a.qemu_bin.display())))?;
        // QEMU waits (wait=on) for the witness on each port before it starts the guest: no line can be missed.
        let mut channels = vec![];
        for sock in &socks {
            let qemu_cell = std::sync::Mutex::new(&mut qemu);
            let check = || async {
                if let Ok(st) = UnixStream::connect(sock).await {
                    return Ok(Some(st));
                }
                let mut q = qemu_cell.lock().unwrap();
                if !q.alive() {
                    return Err(vm_err(s.vm, s.site, Cause::Harness, format!("QEMU exited at start: {}", q.log_tail(3))));
                }
                Ok(None)
            };
            let connected = wait::until("QEMU's probe socket", Duration::from_secs(10), check, wait::every(Duration::from_millis(25))).await;
            match connected {
                Ok(st) => channels.push(st.into_split()),
                Err(e) => {
                    qemu.kill().await;
                    return Err(match e {
                        wait::WaitError::Failed(e) => e,
                        wait::WaitError::Timeout { .. } => vm_err(s.vm, s.site, Cause::Harness, "QEMU's probe socket did not appear within 10s"),
                    });
                }
            }
        }
        Ok((qemu, console, channels, started))
    }
}

struct Spec<'a> {
    vm: &'a str,
    site: &'a str,
    ns: &'a str,
    conf: &'a std::path::Path,
    dir: &'a std::path::Path,
    memory_mib: u64,
    rate: u32,
    scan_limit: u64,
}
