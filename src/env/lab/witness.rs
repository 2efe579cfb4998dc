//! What the harness sees of a lab site from outside it, to show a fault in effect or gone: the site's
//! processes and their states as `/proc` shows them, connection attempts made from inside the other
//! sites' namespaces (through the delay line like every packet between sites), round trips and
//! throughput. Each network look runs on a thread of its own that enters one namespace and serves nothing
//! else. Thin I/O: `fault::judge` decides.

use crate::fault::{ProcSeen, Reach};
use crate::procs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// How long a connection attempt waits for an answer before it counts as unanswered: 300 ms beyond three
/// times the round trip the delay line adds (a handshake on this machine takes well under a millisecond,
/// a loaded one a few).
pub fn silent_after(added_round_trip: Duration) -> Duration {
    Duration::from_millis(300) + added_round_trip * 3
}

/// A process as `/proc/<pid>/stat` shows it (None: gone).
pub fn process(pid: i32) -> Option<ProcSeen> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &stat)
}

/// Reads the name and state of `/proc/<pid>/stat` (the name in parentheses may hold spaces and
/// parentheses itself: the state follows the last `)`). Pure.
pub fn parse_stat(pid: i32, stat: &str) -> Option<ProcSeen> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    let state = stat.get(close + 1..)?.trim_start().chars().next()?;
    Some(ProcSeen { pid, name, state })
}

/// Every process in network namespace `ns`.
pub fn processes(ns: &str) -> Vec<ProcSeen> {
    procs::netns_pids(ns).into_iter().filter_map(process).collect()
}

fn enter(ns: &str) -> std::io::Result<()> {
    let f = std::fs::File::open(format!("/run/netns/{ns}"))?;
    // SAFETY: setns(2) on the calling thread only (a thread spawned for this look).
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `f` on a new thread inside namespace `ns`; its result, or the error that kept it from running.
pub async fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> std::io::Result<T> {
    let ns = ns.to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(enter(&ns).and_then(|()| f()));
    });
    rx.await.unwrap_or_else(|_| Err(std::io::Error::other("the looking thread died")))
}

/// One connection attempt, as its sender sees it.
pub fn attempt(addr: SocketAddr, timeout: Duration) -> Reach {
    let t = Instant::now();
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(_) => Reach::Answered(t.elapsed()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Reach::Refused(t.elapsed()),
        // timed out, or nowhere to send it (a link set down): nothing came back
        Err(_) => Reach::Silent(t.elapsed()),
    }
}

/// A connection attempt from inside `ns` to `addr`, unanswered after `timeout`.
pub async fn reach(ns: &str, addr: SocketAddr, timeout: Duration) -> std::io::Result<Reach> {
    in_ns(ns, move || Ok(attempt(addr, timeout))).await
}

/// The median of `samples` handshakes from inside `ns` to `addr` (a reset counts: it crossed the link
/// both ways); None if none came back.
pub async fn median_rtt(ns: &str, addr: SocketAddr, samples: u32) -> std::io::Result<Option<Duration>> {
    in_ns(ns, move || {
        let mut v = vec![];
        for _ in 0..samples {
            match attempt(addr, Duration::from_secs(3)) {
                Reach::Answered(d) | Reach::Refused(d) => v.push(d),
                Reach::Silent(_) => {}
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        v.sort();
        Ok(v.get(v.len() / 2).copied())
    })
    .await
}

/// Throughput from inside `from_ns` to a listener the harness opens in `to_ns` on `to_ip`: `bytes`
/// sent, timed from the first byte received to the last; bits per second.
pub async fn throughput(from_ns: &str, to_ns: &str, to_ip: &str, bytes: usize) -> std::io::Result<f64> {
    let bind: SocketAddr = format!("{to_ip}:0").parse().map_err(std::io::Error::other)?;
    let listener = in_ns(to_ns, move || TcpListener::bind(bind)).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let r = (|| {
            listener.set_nonblocking(false)?;
            let (mut s, _) = listener.accept()?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0usize;
            let mut first = None;
            loop {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                first.get_or_insert_with(Instant::now);
                got += n;
            }
            Ok::<_, std::io::Error>((got, first.map(|t| t.elapsed()).unwrap_or_default()))
        })();
        let _ = tx.send(r);
    });
    in_ns(from_ns, move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_write_timeout(Some(Duration::from_secs(30)))?;
        let chunk = vec![0x5au8; 16 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            s.write_all(&chunk[..n])?;
            left -= n;
        }
        s.shutdown(std::net::Shutdown::Write)
    })
    .await?;
    let (got, took) = rx.await.unwrap_or_else(|_| Err(std::io::Error::other("the receiving thread died")))?;
    if got < bytes || took.is_zero() {
        return Err(std::io::Error::other(format!("{got} of {bytes} bytes arrived in {took:?}")));
    }
    // the first packet's bytes arrived before the clock started: count from the second on
    Ok(((got.saturating_sub(16 * 1024)) as f64 * 8.0) / took.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_the_name_and_state_whatever_the_name_holds() {
        let p = parse_stat(42, "42 (ceph-osd) S 1 42 42 0 -1").unwrap();
        assert_eq!((p.pid, p.name.as_str(), p.state), (42, "ceph-osd", 'S'));
        let p = parse_stat(7, "7 (qemu (vm) 1) T 1 7").unwrap();
        assert_eq!((p.name.as_str(), p.state), ("qemu (vm) 1", 'T'));
        assert_eq!(parse_stat(1, "garbage"), None);
        assert_eq!(parse_stat(1, "1 (x)"), None);
    }

    #[test]
    fn this_process_is_seen_running_and_a_gone_one_is_not_seen() {
        let me = process(std::process::id() as i32).unwrap();
        assert!(matches!(me.state, 'R' | 'S'), "{me:?}");
        assert_eq!(process(i32::MAX), None);
    }

    #[test]
    fn an_attempt_to_a_closed_port_is_refused_and_to_an_open_one_answered() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = l.local_addr().unwrap();
        assert!(matches!(attempt(open, Duration::from_secs(1)), Reach::Answered(_)));
        drop(l);
        assert!(matches!(attempt(open, Duration::from_secs(1)), Reach::Refused(_)));
    }
}
