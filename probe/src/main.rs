//! `dr-probe`: the guest workload. As PID 1 of the lab's initramfs it mounts the pseudo file systems,
//! loads the virtio modules, reads its settings from the kernel command line (`drprobe.mode=...`) and talks
//! to the harness over the virtio-serial port named `dr.probe`. Outside the lab it runs as a command:
//!
//! ```text
//! dr-probe write  --device /dev/vdb [--rate 50] [--port PATH]   # acks to PATH or stdout
//! dr-probe verify --device /dev/vdb [--limit BLOCKS]
//! dr-probe resume --device /dev/vdb [--rate 50] [--limit BLOCKS] # verify, then continue the chain
//! ```
//! Each record is written with O_DIRECT and made durable with fdatasync before its ACK is sent.

use dr_probe::{decode, encode, scan_lines, Kind, Msg, Record, ScanReport, Scanner, BLOCK, PORT_NAME};
use std::alloc::{alloc_zeroed, Layout};
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
struct Settings {
    mode: String,
    device: String,
    port: Option<String>,
    rate: u32,
    limit: u64,
    seq: u64,
    /// Wait for the host's "go" before writing anything (a channel that drops what nobody reads, like a
    /// serial console before the harness attaches).
    wait: bool,
    /// Disks of the VM (the guest only): each its own writer, record stream and port (`dr.probe.0`, ...).
    disks: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { mode: "write".into(), device: String::new(), port: None, rate: 50, limit: 0, seq: 0, wait: false, disks: 1 }
    }
}

impl Settings {
    fn set(&mut self, key: &str, val: &str) -> Result<(), String> {
        let num = |v: &str| v.parse::<u64>().map_err(|_| format!("{key}: not a number: {v}"));
        match key {
            "mode" => self.mode = val.to_string(),
            "device" => self.device = val.to_string(),
            "port" => self.port = Some(val.to_string()),
            "rate" => self.rate = num(val)? as u32,
            "limit" => self.limit = num(val)?,
            "seq" => self.seq = num(val)?,
            "wait" => self.wait = num(val)? != 0,
            "disks" => self.disks = (num(val)? as u32).clamp(1, 16),
            _ => return Err(format!("unknown setting {key}")),
        }
        Ok(())
    }
}

type Out = Arc<Mutex<Box<dyn Write + Send>>>;

fn send(out: &Out, m: &Msg) {
    let mut o = out.lock().unwrap();
    let _ = writeln!(o, "{m}");
    let _ = o.flush();
}

fn now_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn boot_id() -> [u8; 16] {
    let mut b = [0u8; 16];
    let n = unsafe { libc::getrandom(b.as_mut_ptr() as *mut libc::c_void, 16, 0) };
    if n != 16 {
        b[..8].copy_from_slice(&now_ns(libc::CLOCK_REALTIME).to_le_bytes());
    }
    b
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A block-aligned buffer, as O_DIRECT needs.
struct Aligned {
    ptr: *mut u8,
    len: usize,
}
impl Aligned {
    fn new(len: usize) -> Aligned {
        let ptr = unsafe { alloc_zeroed(Layout::from_size_align(len, BLOCK).unwrap()) };
        assert!(!ptr.is_null());
        Aligned { ptr, len }
    }
    fn buf(&mut self) -> &mut [u8] {
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

fn pread(f: &File, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
    let n = unsafe { libc::pread(f.as_raw_fd(), buf.as_mut_ptr() as *mut _, buf.len(), off as i64) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn pwrite_durable(f: &File, buf: &[u8], off: u64) -> std::io::Result<()> {
    let n = unsafe { libc::pwrite(f.as_raw_fd(), buf.as_ptr() as *const _, buf.len(), off as i64) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if n as usize != buf.len() {
        return Err(std::io::Error::other(format!("short write {n}")));
    }
    if unsafe { libc::fdatasync(f.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn device_blocks(f: &File) -> u64 {
    let mut size: u64 = 0;
    // BLKGETSIZE64
    let r = unsafe { libc::ioctl(f.as_raw_fd(), 0x8008_1272, &mut size) };
    if r != 0 {
        size = f.metadata().map(|m| m.len()).unwrap_or(0);
    }
    size / BLOCK as u64
}

fn open_device(path: &str) -> Result<File, String> {
    OpenOptions::new().read(true).write(true).custom_flags(libc::O_DIRECT).open(path).map_err(|e| format!("failed to open {path}: {e}"))
}

/// Scans blocks 0..limit with 1 MiB reads.
fn scan(dev: &File, limit: u64) -> Result<ScanReport, String> {
    const CHUNK: usize = 256;
    let mut buf = Aligned::new(CHUNK * BLOCK);
    let mut s = Scanner::new();
    let mut block = 0u64;
    while block < limit {
        let n = ((limit - block) as usize).min(CHUNK);
        let b = buf.buf();
        let got = pread(dev, &mut b[..n * BLOCK], block * BLOCK as u64).map_err(|e| format!("failed to read block {block}: {e}"))?;
        if got < BLOCK {
            break;
        }
        for i in 0..got / BLOCK {
            s.push(block + i as u64, &decode(block + i as u64, &b[i * BLOCK..(i + 1) * BLOCK]));
        }
        block += (got / BLOCK) as u64;
    }
    Ok(s.finish())
}

fn run(cfg: &Settings, out: &Out, stop: Arc<AtomicBool>) -> Result<(), String> {
    let dev = open_device(&cfg.device)?;
    let blocks = device_blocks(&dev);
    let boot = boot_id();
    send(out, &Msg::Hello { mode: cfg.mode.clone(), boot: hex(&boot), blocks });
    let limit = if cfg.limit == 0 { blocks } else { cfg.limit.min(blocks) };
    let (mut seq, mut prev) = (1u64, 0u64);
    match cfg.mode.as_str() {
        "write" => {}
        "verify" | "resume" => {
            let r = scan(&dev, limit)?;
            for m in scan_lines(&r) {
                send(out, &m);
            }
            if cfg.mode == "verify" {
                return Ok(());
            }
            // Crash recovery done: continue the chain after the last contiguous record.
            seq = r.highest_contiguous + 1;
            prev = r.tail_hash;
        }
        "corrupt" => {
            if cfg.seq == 0 {
                return Err("refusing to damage record 0: records start at 1 (block 0 holds none)".into());
            }
            let mut b = Aligned::new(BLOCK);
            let off = cfg.seq * BLOCK as u64;
            pread(&dev, b.buf(), off).map_err(|e| format!("failed to read block {}: {e}", cfg.seq))?;
            for x in &mut b.buf()[1024..1040] {
                *x ^= 0xa5;
            }
            pwrite_durable(&dev, b.buf(), off).map_err(|e| format!("failed to write block {}: {e}", cfg.seq))?;
            send(out, &Msg::Corrupted { seq: cfg.seq });
            return Ok(());
        }
        m => return Err(format!("unknown mode {m}")),
    }
    let period = if cfg.rate == 0 { Duration::ZERO } else { Duration::from_secs_f64(1.0 / cfg.rate as f64) };
    let mut buf = Aligned::new(BLOCK);
    let mut next = Instant::now();
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if seq >= blocks {
            send(out, &Msg::Full { seq: seq - 1 });
            return Ok(());
        }
        let r = Record {
            kind: if stopping { Kind::Stop } else { Kind::Data },
            seq,
            boot,
            wall_ns: now_ns(libc::CLOCK_REALTIME),
            mono_ns: now_ns(libc::CLOCK_MONOTONIC),
            prev_hash: prev,
        };
        prev = encode(&r, buf.buf());
        let t = Instant::now();
        pwrite_durable(&dev, buf.buf(), seq * BLOCK as u64).map_err(|e| format!("failed to write record {seq}: {e}"))?;
        let lat_us = t.elapsed().as_micros() as u64;
        if stopping {
            send(out, &Msg::Stopped { seq });
            return Ok(());
        }
        send(out, &Msg::Ack { seq, wall_ns: r.wall_ns, lat_us });
        seq += 1;
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now; // behind schedule: no burst to catch up
        }
    }
}

/// Reads host commands from the port on a thread: "stop" (graceful shutdown), "ping N" (answered at once
/// with PONG N, so the host can measure the port's latency).
fn watch_commands(reader: Box<dyn Read + Send>, stop: Arc<AtomicBool>, go: Arc<AtomicBool>, out: Out) {
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(l) = line else { return };
            let l = l.trim();
            if l == "go" {
                go.store(true, Ordering::SeqCst);
            } else if l == "stop" {
                stop.store(true, Ordering::SeqCst);
            } else if let Some(n) = l.strip_prefix("ping ").and_then(|n| n.parse().ok()) {
                send(&out, &Msg::Pong { n });
            }
        }
    });
}

// ---------------------------------------------------------------- guest (PID 1)

fn mount(src: &str, target: &str, fstype: &str) {
    let _ = fs::create_dir_all(target);
    let (s, t, f) = (CString::new(src).unwrap(), CString::new(target).unwrap(), CString::new(fstype).unwrap());
    unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), 0, std::ptr::null()) };
}

fn load_modules() {
    // Order matters: there is no modules.dep in the initramfs.
    let order = ["virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "virtio_blk", "virtio_console"];
    for m in order {
        let path = format!("/lib/modules/{m}.ko");
        let Ok(img) = fs::read(&path) else { continue };
        let params = CString::new("").unwrap();
        let r = unsafe { libc::syscall(libc::SYS_init_module, img.as_ptr(), img.len(), params.as_ptr()) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                eprintln!("dr-probe: failed to load {m}: {e}");
            }
        }
    }
}

fn wait_for<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T, String> {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if t0.elapsed() > deadline {
            return Err(format!("{what} did not appear within {deadline:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The device node of the entry of sysfs directory `class` whose attribute `attr` reads `want`.
fn find_dev(class: &str, attr: &str, want: &str) -> Option<String> {
    for e in fs::read_dir(class).ok()?.flatten() {
        let got = fs::read_to_string(e.path().join(attr)).unwrap_or_default();
        if got.trim() == want {
            let dev = format!("/dev/{}", e.file_name().to_string_lossy());
            if fs::metadata(&dev).is_ok() {
                return Some(dev);
            }
        }
    }
    None
}

/// The virtio-serial port named `want`.
fn find_port(want: &str) -> Option<String> {
    find_dev("/sys/class/virtio-ports", "name", want)
}

/// No echo, no line editing, no CR/LF translation: the console carries the probe's lines byte for byte.
fn raw_tty(f: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: termios calls on an open descriptor with a zeroed struct filled by tcgetattr.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(f.as_raw_fd(), &mut t) == 0 {
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(f.as_raw_fd(), libc::TCSANOW, &t);
        }
    }
}

fn power_off() -> ! {
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn guest_main() -> ! {
    mount("proc", "/proc", "proc");
    mount("sysfs", "/sys", "sysfs");
    mount("devtmpfs", "/dev", "devtmpfs");
    load_modules();
    let mut cfg = Settings { device: "/dev/vda".into(), ..Default::default() };
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let mut bad = None;
    for kv in cmdline.split_whitespace() {
        if let Some((k, v)) = kv.strip_prefix("drprobe.").and_then(|s| s.split_once('=')) {
            if let Err(e) = cfg.set(k, v) {
                bad = Some(e);
            }
        }
    }
    // The harness's channel: the virtio-serial port `dr.probe` (lab), or a serial console named on the
    // command line (`drprobe.port=ttyS0`: KubeVirt's console subresource carries it), put in raw mode.
    if cfg.disks > 1 && cfg.port.is_none() {
        if let Some(e) = bad {
            eprintln!("dr-probe: {e}");
            power_off()
        }
        multi_disk(&cfg)
    }
    let port = match &cfg.port {
        Some(tty) => wait_for(tty, Duration::from_secs(20), || {
            let dev = format!("/dev/{}", tty.trim_start_matches("/dev/"));
            fs::metadata(&dev).is_ok().then_some(dev)
        }),
        None => wait_for("virtio-serial port dr.probe", Duration::from_secs(20), || find_port(PORT_NAME)),
    };
    let port = match port {
        Ok(p) => p,
        Err(e) => {
            eprintln!("dr-probe: {e}");
            power_off()
        }
    };
    let w = OpenOptions::new().read(true).write(true).open(&port);
    let Ok(w) = w else {
        eprintln!("dr-probe: failed to open {port}");
        power_off()
    };
    if cfg.port.is_some() {
        raw_tty(&w);
    }
    let r = w.try_clone().expect("dup port");
    let out: Out = Arc::new(Mutex::new(Box::new(w)));
    if let Some(e) = bad {
        send(&out, &Msg::Error { msg: e });
        power_off()
    }
    let stop = Arc::new(AtomicBool::new(false));
    let go = Arc::new(AtomicBool::new(false));
    watch_commands(Box::new(r), stop.clone(), go.clone(), out.clone());
    if cfg.wait && wait_for("the host's go", Duration::from_secs(600), || go.load(Ordering::SeqCst).then_some(())).is_err() {
        power_off()
    }
    let dev = cfg.device.clone();
    if let Err(e) = wait_for(&dev, Duration::from_secs(20), || fs::metadata(&dev).ok()) {
        send(&out, &Msg::Error { msg: e });
        power_off()
    }
    if let Err(e) = run(&cfg, &out, stop) {
        send(&out, &Msg::Error { msg: e });
    }
    power_off()
}

/// The block device whose virtio serial is `serial` (the harness names each drive `drdisk<i>`).
fn find_disk(serial: &str) -> Option<String> {
    find_dev("/sys/block", "serial", serial)
}

/// A VM of several disks: one writer per disk, each on its own port (`dr.probe.<i>`) with its own record
/// stream and boot id, found by the drive's serial (`drdisk<i>`); the guest powers off once every writer has
/// ended (a graceful stop asks each port for its STOP record).
fn multi_disk(cfg: &Settings) -> ! {
    let writers: Vec<_> = (0..cfg.disks)
        .map(|i| {
            let mut cfg = cfg.clone();
            std::thread::spawn(move || {
                let name = format!("{PORT_NAME}.{i}");
                let Ok(port) = wait_for(&format!("virtio-serial port {name}"), Duration::from_secs(20), || find_port(&name)) else { return };
                let Ok(w) = OpenOptions::new().read(true).write(true).open(&port) else { return };
                let Ok(r) = w.try_clone() else { return };
                let out: Out = Arc::new(Mutex::new(Box::new(w)));
                let (stop, go) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
                watch_commands(Box::new(r), stop.clone(), go.clone(), out.clone());
                if cfg.wait && wait_for("the host's go", Duration::from_secs(600), || go.load(Ordering::SeqCst).then_some(())).is_err() {
                    return;
                }
                let serial = format!("drdisk{i}");
                match wait_for(&format!("the disk with serial {serial}"), Duration::from_secs(20), || find_disk(&serial)) {
                    Ok(dev) => cfg.device = dev,
                    Err(e) => return send(&out, &Msg::Error { msg: e }),
                }
                if let Err(e) = run(&cfg, &out, stop) {
                    send(&out, &Msg::Error { msg: e });
                }
            })
        })
        .collect();
    for w in writers {
        let _ = w.join();
    }
    power_off()
}

fn main() {
    if std::process::id() == 1 {
        guest_main();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: dr-probe write|verify|resume|corrupt --device PATH [--rate N] [--limit BLOCKS] [--seq N] [--port PATH] [--wait 1]";
    let Some(mode) = args.first() else {
        eprintln!("{usage}");
        std::process::exit(2)
    };
    let mut cfg = Settings { mode: mode.clone(), ..Default::default() };
    let mut it = args[1..].iter();
    while let Some(k) = it.next() {
        let (Some(key), Some(v)) = (k.strip_prefix("--"), it.next()) else {
            eprintln!("{usage}");
            std::process::exit(2)
        };
        if let Err(e) = cfg.set(key, v) {
            eprintln!("dr-probe: {e}\n{usage}");
            std::process::exit(2)
        }
    }
    if cfg.device.is_empty() {
        eprintln!("dr-probe: --device is required\n{usage}");
        std::process::exit(2)
    }
    let stop = Arc::new(AtomicBool::new(false));
    let go = Arc::new(AtomicBool::new(false));
    let out: Out = match &cfg.port {
        Some(p) => {
            let f = OpenOptions::new().read(true).write(true).open(p).unwrap_or_else(|e| {
                eprintln!("dr-probe: failed to open port {p}: {e}");
                std::process::exit(2)
            });
            let out: Out = Arc::new(Mutex::new(Box::new(f.try_clone().unwrap())));
            watch_commands(Box::new(f), stop.clone(), go.clone(), out.clone());
            out
        }
        None => {
            let out: Out = Arc::new(Mutex::new(Box::new(std::io::stdout())));
            watch_commands(Box::new(std::io::stdin()), stop.clone(), go.clone(), out.clone());
            out
        }
    };
    if cfg.wait && wait_for("the host's go", Duration::from_secs(600), || go.load(Ordering::SeqCst).then_some(())).is_err() {
        eprintln!("dr-probe: no go from the host within 600s");
        std::process::exit(1)
    }
    if let Err(e) = run(&cfg, &out, stop) {
        send(&out, &Msg::Error { msg: e.clone() });
        eprintln!("dr-probe: {e}");
        std::process::exit(1)
    }
}
