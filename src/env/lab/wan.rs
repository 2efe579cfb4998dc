//! The inter-site network of the lab as a fault surface: a userspace delay line. This machine's kernel has
//! no `tc netem`, so each link between two sites is a TUN device in each site's namespace, and the harness
//! carries every packet from one to the other: held until it is due (one-way delay, jitter), dropped when
//! told (loss, partition), paced to a rate. Order is kept per direction (a packet is never due before the
//! one ahead of it), and nothing is dropped that it was not told to drop (the queue's own limit is counted
//! apart). Changing a link's shape takes effect for the next packet.

use crate::error::{Cause, EnvError};
use serde::Serialize;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
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

/// Carries packets read from `input` to `output` as `dir` says, until aborted.
async fn carry(input: Arc<AsyncFd<OwnedFd>>, output: Arc<AsyncFd<OwnedFd>>, dir: Direction) {
    let mut q: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let (mut last_due, mut free_at) = (Instant::now(), Instant::now());
    let mut rng = Rng::seeded();
    let mut buf = vec![0u8; 65_536];
    loop {
        let next = q.front().map(|p| p.0);
        tokio::select! {
            g = input.readable() => {
                let Ok(mut g) = g else { return };
                loop {
                    match g.try_io(|fd| read(fd.get_ref(), &mut buf)) {
                        Ok(Ok(n)) if n > 0 => {
                            let s = dir.shape.lock().unwrap().clone();
                            if s.cut || (s.loss > 0.0 && rng.next() < s.loss) {
                                dir.counters.dropped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            if q.len() >= QUEUE_LIMIT {
                                dir.counters.overflow.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            let d = due(Instant::now(), n, &s, rng.next(), last_due, &mut free_at);
                            last_due = d;
                            q.push_back((d, buf[..n].to_vec()));
                        }
                        Ok(Ok(_)) => break,
                        Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Ok(Err(_)) => return,
                        Err(_would_block) => break,
                    }
                }
            }
            _ = async { match next { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {
                let now = Instant::now();
                while q.front().is_some_and(|p| p.0 <= now) {
                    let (_, pkt) = q.pop_front().expect("checked");
                    // a TUN device takes a packet at once, or refuses it (its link is down: isolation)
                    match write(output.get_ref(), &pkt) {
                        Ok(_) => dir.counters.forwarded.fetch_add(1, Ordering::Relaxed),
                        Err(_) => dir.counters.overflow.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }
        }
    }
}

/// A link between two sites through the delay line: a TUN device `dev` in each namespace and one carrier
/// task per direction. Dropping it closes the devices.
pub struct WanLink {
    pub a: String,
    pub b: String,
    pub ab: Direction,
    pub ba: Direction,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl WanLink {
    /// Opens the devices (named `dev` in both namespaces) and starts carrying; addresses and link state
    /// are the caller's (`ip`).
    pub fn open(a: (&str, &str), b: (&str, &str), dev: &str) -> Result<WanLink, EnvError> {
        // SAFETY: the OwnedFd is ours alone and stays the same descriptor until the AsyncFd drops it.
        let reg = |fd: OwnedFd| unsafe { AsyncFd::register(fd) }.map(Arc::new).map_err(|e| harness("register a TUN device", e.to_string()));
        let fa = reg(open_tun(a.1, dev)?)?;
        let fb = reg(open_tun(b.1, dev)?)?;
        let (ab, ba) = (Direction::default(), Direction::default());
        let tasks = vec![tokio::spawn(carry(fa.clone(), fb.clone(), ab.clone())), tokio::spawn(carry(fb, fa, ba.clone()))];
        Ok(WanLink { a: a.0.to_string(), b: b.0.to_string(), ab, ba, tasks })
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
        for t in &self.tasks {
            t.abort();
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
