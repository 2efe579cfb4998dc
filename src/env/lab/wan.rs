//! The inter-site network of the lab as a fault surface: a userspace delay line. This machine's kernel has
//! no `tc netem`, so each link between two sites is a TUN device in each site's namespace, and the harness
//! carries every packet from one to the other (two threads per direction: one reads, one writes when due): held until it is due (one-way delay, jitter), dropped when
//! told (loss, partition), paced to a rate. Order is kept per direction (a packet is never due before the
//! one ahead of it), and nothing is dropped that it was not told to drop (the queue's own limit is counted
//! apart). Changing a link's shape takes effect for the next packet.

use crate::error::{Cause, EnvError};
use serde::Serialize;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// What a direction of a link does to its packets.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    /// One-way delay.
    pub delay: Duration,
    /// Added to the delay, uniform in [0, jitter) (order is kept: a packet waits for the one ahead).
    pub jitter: Duration,
    /// Share of packets dropped, 0..1.
    pub loss: f64,
    /// Bits per second (None: as fast as the harness carries them).
    pub rate_bps: Option<u64>,
    /// Every packet dropped (a partition).
    pub cut: bool,
}

/// Counters of one direction.
#[derive(Debug, Default)]
pub struct Counters {
    pub forwarded: AtomicU64,
    /// Dropped because the shape said so (loss, partition).
    pub dropped: AtomicU64,
    /// Dropped because the queue was full (a rate far below the offered load) or the far end was down.
    pub overflow: AtomicU64,
}

/// One direction of a link: its shape and its counters.
#[derive(Clone, Debug, Default)]
pub struct Direction {
    pub shape: Arc<Mutex<Shape>>,
    pub counters: Arc<Counters>,
}

/// Packets a direction may hold (as netem's default limit).
const QUEUE_LIMIT: usize = 10_000;
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

fn harness(what: &str, e: impl std::fmt::Display) -> EnvError {
    EnvError::Site { site: "-".into(), what: what.into(), detail: e.to_string(), cause: Cause::Harness }
}

/// Opens TUN device `name` inside network namespace `ns` (non-blocking); the device lives as long as the
/// descriptor.
pub fn open_tun(ns: &str, name: &str) -> Result<OwnedFd, EnvError> {
    let what = format!("open TUN device {name} in namespace {ns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let nsf = std::fs::File::open(format!("/run/netns/{ns}")).map_err(|e| harness(&what, e))?;
            // SAFETY: setns(2) on this short-lived thread only; the process's other threads stay put.
            if unsafe { libc::setns(nsf.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(harness(&what, std::io::Error::last_os_error()));
            }
            // SAFETY: open(2) of a device node with a NUL-terminated path.
            let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(harness(&what, std::io::Error::last_os_error()));
            }
            // SAFETY: a descriptor we just opened and own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let mut ifr = [0u8; 40];
            let n = name.len().min(15);
            ifr[..n].copy_from_slice(&name.as_bytes()[..n]);
            let flags = (libc::IFF_TUN | libc::IFF_NO_PI) as u16;
            ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
            // SAFETY: TUNSETIFF with a 40-byte struct ifreq.
            if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) } < 0 {
                return Err(harness(&what, std::io::Error::last_os_error()));
            }
            Ok(fd)
        })
        .join()
        .map_err(|_| harness(&what, "the thread that opened it panicked"))?
    })
}

/// A small xorshift generator (loss and jitter need no more).
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let mut b = [0u8; 8];
        // SAFETY: getrandom(2) into a local buffer.
        unsafe { libc::getrandom(b.as_mut_ptr() as *mut libc::c_void, 8, 0) };
        Rng(u64::from_ne_bytes(b) | 1)
    }
    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// When a packet of `len` bytes arriving at `now` is due, given the shape and the direction's state:
/// `last_due` (the packet ahead) and `free_at` (when the paced link is free). Pure.
pub fn due(now: Instant, len: usize, s: &Shape, jitter_draw: f64, last_due: Instant, free_at: &mut Instant) -> Instant {
    let mut due = now + s.delay + s.jitter.mul_f64(jitter_draw);
    if let Some(bps) = s.rate_bps.filter(|b| *b > 0) {
        let start = (*free_at).max(now);
        *free_at = start + Duration::from_secs_f64(len as f64 * 8.0 / bps as f64);
        due = due.max(*free_at);
    }
    due.max(last_due)
}

fn read(fd: &OwnedFd, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: read(2) into a buffer we own.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn write(fd: &OwnedFd, buf: &[u8]) -> std::io::Result<usize> {
    // SAFETY: write(2) from a buffer we own.
    let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr() as *const libc::c_void, buf.len()) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Waits until `fd` is readable or `timeout` passes (poll(2)); false on timeout.
fn readable(fd: &OwnedFd, timeout: Duration) -> bool {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: poll(2) on one descriptor we own.
    unsafe { libc::poll(&mut p, 1, timeout.as_millis().min(i32::MAX as u128) as i32) > 0 }
}

/// Carries packets from `input` to `output` as `dir` says, on a thread of its own (the sleeps are the
/// kernel's, precise to tens of microseconds, where an async timer would round each hop up to its
/// millisecond tick), until `stop` is set.
fn carry(input: Arc<OwnedFd>, output: Arc<OwnedFd>, dir: Direction, stop: Arc<std::sync::atomic::AtomicBool>) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<(std::time::Instant, Vec<u8>)>(QUEUE_LIMIT);
    let (d2, stop2) = (dir.clone(), stop.clone());
    // the reader: stamps each packet with when it is due
    let reader = std::thread::spawn(move || {
        let mut rng = Rng::seeded();
        let mut buf = vec![0u8; 65_536];
        let (mut last_due, mut free_at) = (Instant::now(), Instant::now());
        while !stop2.load(Ordering::Relaxed) {
            if !readable(&input, Duration::from_millis(100)) {
                continue;
            }
            loop {
                let n = match read(&input, &mut buf) {
                    Ok(n) if n > 0 => n,
                    _ => break,
                };
                let s = d2.shape.lock().unwrap().clone();
                if s.cut || (s.loss > 0.0 && rng.next() < s.loss) {
                    d2.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let d = due(Instant::now(), n, &s, rng.next(), last_due, &mut free_at);
                last_due = d;
                if tx.try_send((d.into_std(), buf[..n].to_vec())).is_err() {
                    d2.counters.overflow.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    // the writer: holds each packet until it is due, in order
    while !stop.load(Ordering::Relaxed) {
        let Ok((due, pkt)) = rx.recv_timeout(Duration::from_millis(100)) else { continue };
        let now = std::time::Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        // a TUN device takes a packet at once, or refuses it (its link is down)
        match write(&output, &pkt) {
            Ok(_) => dir.counters.forwarded.fetch_add(1, Ordering::Relaxed),
            Err(_) => dir.counters.overflow.fetch_add(1, Ordering::Relaxed),
        };
    }
    let _ = reader.join();
}

/// A link between two sites through the delay line: a TUN device `dev` in each namespace and one carrier
/// task per direction. Dropping it closes the devices.
pub struct WanLink {
    pub a: String,
    pub b: String,
    pub ab: Direction,
    pub ba: Direction,
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl WanLink {
    /// Opens the devices, each end given as (site, namespace, device name), and starts carrying;
    /// addresses, routes and link state are the caller's (`ip`).
    pub fn open(a: (&str, &str, &str), b: (&str, &str, &str)) -> Result<WanLink, EnvError> {
        let fa = Arc::new(open_tun(a.1, a.2)?);
        let fb = Arc::new(open_tun(b.1, b.2)?);
        let (ab, ba) = (Direction::default(), Direction::default());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spawn = |i: &Arc<OwnedFd>, o: &Arc<OwnedFd>, d: &Direction| {
            let (i, o, d, s) = (i.clone(), o.clone(), d.clone(), stop.clone());
            std::thread::spawn(move || carry(i, o, d, s))
        };
        let threads = vec![spawn(&fa, &fb, &ab), spawn(&fb, &fa, &ba)];
        Ok(WanLink { a: a.0.to_string(), b: b.0.to_string(), ab, ba, stop, threads })
    }

    /// The direction from site `from` to site `to`, if this link joins them.
    pub fn direction(&self, from: &str, to: &str) -> Option<&Direction> {
        if (from, to) == (self.a.as_str(), self.b.as_str()) {
            Some(&self.ab)
        } else if (from, to) == (self.b.as_str(), self.a.as_str()) {
            Some(&self.ba)
        } else {
            None
        }
    }
}

impl Drop for WanLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_kept_whatever_the_jitter() {
        let t0 = Instant::now();
        let s = Shape { delay: Duration::from_millis(10), jitter: Duration::from_millis(50), ..Default::default() };
        let (mut last, mut free) = (t0, t0);
        // a packet drawing a large jitter holds back the next one that draws a small one
        let d1 = due(t0, 100, &s, 0.9, last, &mut free);
        last = d1;
        let d2 = due(t0 + Duration::from_millis(1), 100, &s, 0.0, last, &mut free);
        assert_eq!(d1, t0 + Duration::from_millis(55));
        assert_eq!(d2, d1, "never due before the packet ahead");
    }

    #[test]
    fn a_rate_paces_packets() {
        let t0 = Instant::now();
        let s = Shape { rate_bps: Some(8_000_000), ..Default::default() }; // 1 MB/s: 1000 bytes take 1 ms
        let (last, mut free) = (t0, t0);
        let d1 = due(t0, 1000, &s, 0.0, last, &mut free);
        let d2 = due(t0, 1000, &s, 0.0, d1, &mut free);
        assert_eq!(d1, t0 + Duration::from_millis(1));
        assert_eq!(d2, t0 + Duration::from_millis(2));
    }

    #[test]
    fn the_generator_is_uniform_enough() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let n = 100_000;
        let below = (0..n).filter(|_| r.next() < 0.01).count();
        assert!((700..1300).contains(&below), "{below} of {n} below 0.01");
    }
}
