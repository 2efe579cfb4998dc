//! The lab's guests: QEMU (TCG) inside a site's namespace, booting the harness's initramfs with the probe as
//! init, its virtio disk on `rbd:` of the site's image, and the probe's port on a unix-socket chardev that
//! the harness (the witness) reads. The Workload port over it is `probe::ProbeWorkload`; this is its
//! launcher.

use super::site::SiteRef;
use super::Assets;
use crate::clock::Wt;
use crate::config::{Budgets, LabSpec};
pub use crate::env::probe::{history, BootLog, Mode};
use crate::env::probe::{Launch, Launched, Launcher, Machine, ProbeWorkload};
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

    /// Starts QEMU and connects the witness to the probe's port.
    async fn launch(&mut self, l: &Launch<'_>) -> Result<Launched, EnvError> {
        let site = self.sites.get(l.site).ok_or_else(|| EnvError::Usage(format!("site {} has no place for VMs in this lab", l.site)))?.clone();
        std::fs::create_dir_all(&self.dir).map_err(|source| EnvError::Io { what: "create the VM directory".into(), source })?;
        let conf = site.conf();
        let (a, initramfs, mode) = (&self.assets, &self.initramfs, l.mode);
        let s = Spec {
            vm: l.vm,
            site: &site.name,
            ns: &site.ns,
            conf: &conf,
            image: &l.volume.name,
            dir: &self.dir,
            memory_mib: self.spec.memory.0 >> 20,
            rate: l.rate,
            scan_limit: l.scan_limit,
        };
        let tag = mode.name();
        let n = std::fs::read_dir(s.dir).map(|d| d.count()).unwrap_or(0);
        let base = s.dir.join(format!("{}-{}-{n}-{tag}", s.vm, s.site));
        let sock = base.with_extension("sock");
        let console = base.with_extension("console");
        let _ = std::fs::remove_file(&sock);
        let q = &a.qemu_root;
        let mut c = procs::in_netns(s.ns, &a.qemu_bin.display().to_string());
        c.env("QEMU_MODULE_DIR", a.qemu_modules());
        // no_timer_check: under TCG on a loaded host (16 guests booting on 2 cores) the kernel's check that
        // the timer interrupt works through the IO-APIC can time out and panic the guest at 0.07 s
        let append = format!("console=ttyS0 panic=-1 quiet no_timer_check {} drprobe.rate={} drprobe.limit={}", mode.cmdline(), s.rate, s.scan_limit);
        // the guest sees the disk's declared size (a clone of the golden image is larger: its pattern lies
        // after the guest's disk, where no guest write can reach)
        let drive =
            format!("file=rbd:rbd/{}:conf={}:id=admin,format=raw,size={},if=none,id=disk0,cache=none", s.image, s.conf.display(), self.spec.disk_size.0);
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
        Ok(Launched { machine: Box::new(QemuMachine { qemu, console }), reader: Box::new(rd), writer: Box::new(wr), started })
    }
}

struct Spec<'a> {
    vm: &'a str,
    site: &'a str,
    ns: &'a str,
    conf: &'a std::path::Path,
    image: &'a str,
    dir: &'a std::path::Path,
    memory_mib: u64,
    rate: u32,
    scan_limit: u64,
}
