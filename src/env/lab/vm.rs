//! The VM: QEMU (TCG) inside a site's namespace, booting the harness's initramfs with the probe as init, its
//! virtio disk on `rbd:` of the site's image, and the probe's port on a unix-socket chardev that the harness
//! (the witness) reads. Every line the probe sends is stamped with the witness clock on arrival.

use super::procs::{self, Daemon};
use super::{Assets, LabError};
use crate::clock::Wt;
use crate::events::{self, Event};
use dr_probe::{Msg, ScanAssembler, ScanReport, PORT_NAME};
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

pub struct VmProcess {
    pub vm: String,
    pub site: String,
    pub mode: Mode,
    pub qemu: Daemon,
    pub log: Arc<Mutex<BootLog>>,
    changed: watch::Receiver<u64>,
    writer: Option<OwnedWriteHalf>,
    pub console: PathBuf,
}

pub struct VmSpec<'a> {
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

fn vm_err(vm: &str, site: &str, detail: impl Into<String>) -> LabError {
    LabError::Vm { vm: vm.into(), site: site.into(), detail: detail.into() }
}

impl VmProcess {
    /// Starts QEMU and connects the witness to the probe's port.
    pub async fn boot(a: &Assets, initramfs: &Path, s: &VmSpec<'_>, mode: Mode) -> Result<VmProcess, LabError> {
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
            .map_err(|e| vm_err(s.vm, s.site, format!("failed to start QEMU: {e}")))?;
        // QEMU waits (wait=on) for the witness before it starts the guest: no line can be missed.
        let mut stream = None;
        for _ in 0..400 {
            if let Ok(st) = UnixStream::connect(&sock).await {
                stream = Some(st);
                break;
            }
            if !qemu.alive() {
                return Err(vm_err(s.vm, s.site, format!("QEMU exited at start: {}", qemu.log_tail(3))));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let Some(stream) = stream else {
            qemu.kill().await;
            return Err(vm_err(s.vm, s.site, "QEMU's probe socket did not appear within 10s"));
        };
        let (rd, wr) = stream.into_split();
        let log = Arc::new(Mutex::new(BootLog { started, site: s.site.to_string(), mode: tag.to_string(), ..Default::default() }));
        let (tx, rx) = watch::channel(0u64);
        let l2 = log.clone();
        let vm_name = s.vm.to_string();
        events::publish_at(started, Event::BootRequested { vm: vm_name.clone(), site: s.site.to_string(), mode: tag.to_string() });
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
                        events::publish_at(t, Event::Scan { vm: vm_name.clone(), highest_contiguous, ranges, corrupt, stop });
                        g.scan = Some((t, r));
                    }
                    let boot = g.hello.as_ref().map(|h| h.1.clone()).unwrap_or_default();
                    match m {
                        Msg::Hello { boot, .. } => {
                            events::publish_at(t, Event::ProbeUp { vm: vm_name.clone(), boot: boot.clone() });
                            g.hello = Some((t, boot))
                        }
                        Msg::Ack { seq, wall_ns } => {
                            events::publish_at(t, Event::Ack { vm: vm_name.clone(), boot, seq, guest_wall_ns: wall_ns });
                            g.acks.push((seq, t, wall_ns))
                        }
                        Msg::Stopped { seq } => {
                            events::publish_at(t, Event::StopRecord { vm: vm_name.clone(), seq });
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
            events::publish_at(t, Event::ProbeGone { vm: vm_name });
            l2.lock().unwrap().eof = Some(t);
            let _ = tx.send(u64::MAX);
        });
        Ok(VmProcess {
            vm: s.vm.into(),
            site: s.site.into(),
            mode,
            qemu,
            log,
            changed: rx,
            writer: Some(wr),
            console,
        })
    }

    fn err(&self, detail: impl Into<String>) -> LabError {
        vm_err(&self.vm, &self.site, detail)
    }

    /// Waits until `cond` holds on the boot log; fails on deadline, a probe error, or the channel closing first.
    pub async fn wait_for<T>(&mut self, what: &str, deadline: Duration, cond: impl Fn(&BootLog) -> Option<T>) -> Result<T, LabError> {
        let t = tokio::time::Instant::now() + deadline;
        loop {
            {
                let g = self.log.lock().unwrap();
                if let Some(v) = cond(&g) {
                    return Ok(v);
                }
                if let Some(e) = g.errors.first() {
                    return Err(self.err(format!("probe reported an error while waiting for {what}: {e}")));
                }
                if g.eof.is_some() {
                    let tail = procs::tail(&self.console, 3);
                    return Err(self.err(format!("the guest went away before {what} (console: {tail})")));
                }
            }
            match tokio::time::timeout_at(t, self.changed.changed()).await {
                Err(_) => return Err(self.err(format!("{what} did not happen within {deadline:?} (console: {})", procs::tail(&self.console, 3)))),
                Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
                Ok(Ok(())) => {}
            }
        }
    }

    /// Graceful shutdown: asks the probe to stop, waits for the durable STOP record and QEMU's exit.
    pub async fn graceful_stop(&mut self, deadline: Duration) -> Result<(Wt, u64), LabError> {
        if let Some(w) = self.writer.as_mut() {
            w.write_all(b"stop\n").await.map_err(|e| self.err(format!("failed to send stop: {e}")))?;
        }
        let r = self.wait_for("the STOP record", deadline, |g| g.stopped).await?;
        if !self.qemu.wait_exit(deadline).await {
            self.qemu.kill().await;
            return Err(self.err("QEMU did not power off after the STOP record"));
        }
        Ok(r)
    }

    /// Round trip over the probe's port: host "ping" to guest PONG, as the witness sees it.
    pub async fn ping(&mut self, n: u64) -> Result<Duration, LabError> {
        let t0 = Wt::now();
        if let Some(w) = self.writer.as_mut() {
            w.write_all(format!("ping {n}\n").as_bytes()).await.map_err(|e| self.err(format!("failed to send ping: {e}")))?;
        }
        let at = self.wait_for("a PONG", Duration::from_secs(5), |g| g.pongs.iter().find(|p| p.0 == n).map(|p| p.1)).await?;
        Ok(at.since(t0))
    }

    /// Waits for the guest to power off by itself (verify and corrupt modes).
    pub async fn wait_poweroff(&mut self, deadline: Duration) -> Result<(), LabError> {
        if self.qemu.wait_exit(deadline).await {
            Ok(())
        } else {
            self.qemu.kill().await;
            Err(self.err(format!("the guest did not power off within {deadline:?}")))
        }
    }

    /// Waits until the witness has read the probe's stream to its end (QEMU is gone and every line it
    /// sent before dying is in the log), so that no acknowledgement is left out of the evidence.
    pub async fn drain(&mut self, deadline: Duration) -> Result<(), LabError> {
        let t = tokio::time::Instant::now() + deadline;
        loop {
            if self.log.lock().unwrap().eof.is_some() {
                return Ok(());
            }
            match tokio::time::timeout_at(t, self.changed.changed()).await {
                Err(_) => return Err(self.err(format!("the probe's stream did not end within {deadline:?} after QEMU stopped"))),
                Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
                Ok(Ok(())) => {}
            }
        }
    }

    /// Hard stop (power loss of its site, or teardown).
    pub async fn kill(&mut self) {
        self.qemu.kill().await;
        self.writer = None;
    }

    pub fn snapshot(&self) -> BootLog {
        self.log.lock().unwrap().clone()
    }
}
