//! The simulated VM: the probe's protocol and record format (the real codec and scanner of `dr_probe`)
//! over an in-memory disk, on the simulated clock. It speaks to the harness's witness exactly as the
//! lab's guest does over its virtio-serial port, so `ProbeWorkload` runs unchanged over it.

use super::world::{Shared, Written};
use crate::clock::Wt;
use crate::env::probe::{Launch, Launched, Launcher, Machine, Mode};
use crate::error::{Cause, EnvError};
use async_trait::async_trait;
use dr_probe::{decode, encode, scan_lines, Kind, Msg, Record, Scanner, BLOCK};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};

/// Boots simulated guests on the world's sites.
pub struct SimLauncher {
    pub world: Shared,
    pub guests: Guests,
    pub disk_records: u64,
    pub boot_time: Duration,
}

struct SimMachine {
    task: tokio::task::JoinHandle<()>,
}

#[async_trait]
impl Machine for SimMachine {
    async fn alive(&mut self) -> bool {
        !self.task.is_finished()
    }
    async fn kill(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
    async fn wait_exit(&mut self, deadline: Duration) -> bool {
        tokio::time::timeout(deadline, &mut self.task).await.is_ok()
    }
    fn rss_bytes(&self) -> u64 {
        0
    }
    fn console_tail(&self, _lines: usize) -> String {
        String::new()
    }
}

/// The guests running on each site (site, task), so a power loss kills them.
pub type Guests = Arc<std::sync::Mutex<Vec<(String, tokio::task::AbortHandle)>>>;

#[async_trait]
impl Launcher for SimLauncher {
    async fn launch(&mut self, l: &Launch<'_>) -> Result<Launched, EnvError> {
        let (site, image) = (l.site.to_string(), l.volume.name.clone());
        let boot = {
            let mut w = self.world.lock().unwrap();
            let st = w.site(&site).map_err(EnvError::Usage)?;
            if !st.alive() {
                return Err(EnvError::Vm { vm: l.vm.into(), site, detail: "the site is down: nothing boots there".into(), cause: Cause::System });
            }
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&w.rng.next_u64().to_be_bytes());
            b[8..].copy_from_slice(&w.rng.next_u64().to_be_bytes());
            b
        };
        let (host, guest) = tokio::io::duplex(1 << 16);
        let (hr, hw) = tokio::io::split(host);
        let g = Guest {
            world: self.world.clone(),
            site: site.clone(),
            image,
            mode: l.mode,
            rate: l.rate,
            limit: l.scan_limit,
            boot,
            boot_time: self.boot_time,
            blocks: self.disk_records + 1,
        };
        let started = Wt::now();
        let task = tokio::spawn(g.run(guest));
        let mut gs = self.guests.lock().unwrap();
        gs.retain(|(_, t)| !t.is_finished());
        gs.push((site, task.abort_handle()));
        Ok(Launched { machine: Box::new(SimMachine { task }), reader: Box::new(hr), writer: Box::new(hw), started })
    }

    fn disk_records(&self) -> u64 {
        self.disk_records
    }
}

struct Guest {
    world: Shared,
    site: String,
    image: String,
    mode: Mode,
    rate: u32,
    limit: u64,
    boot: [u8; 16],
    boot_time: Duration,
    blocks: u64,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Guest {
    /// Waits while the guest's site is frozen (a frozen guest neither writes nor answers).
    async fn thawed(&self) {
        while self.world.lock().unwrap().site(&self.site).is_ok_and(|s| s.frozen) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn run(self, io: DuplexStream) {
        let (rd, mut out) = tokio::io::split(io);
        let mut cmds = BufReader::new(rd).lines();
        tokio::time::sleep(self.boot_time).await;
        self.thawed().await;
        let send = |m: Msg| format!("{m}\n");
        let mut buf = String::new();
        buf.push_str(&send(Msg::Hello { mode: self.mode.name().into(), boot: hex(&self.boot), blocks: self.blocks }));
        let (mut seq, mut prev) = (1u64, 0u64);
        match self.mode {
            Mode::Write => {}
            Mode::Verify | Mode::Resume => {
                let disk = self.world.lock().unwrap().read(&self.site, &self.image);
                let disk = match disk {
                    Ok(d) => d,
                    Err(e) => {
                        buf.push_str(&send(Msg::Error { msg: format!("failed to read the disk: {e}") }));
                        let _ = out.write_all(buf.as_bytes()).await;
                        return;
                    }
                };
                let mut s = Scanner::new();
                let limit = self.limit.min(self.blocks);
                for b in 0..limit {
                    // a block never written reads as zeros: empty, without decoding 4 KiB of them
                    match disk.get(&b) {
                        Some(bytes) => s.push(b, &decode(b, bytes)),
                        None => s.push(b, &dr_probe::Block::Empty),
                    }
                }
                let r = s.finish();
                for m in scan_lines(&r) {
                    buf.push_str(&send(m));
                }
                if self.mode == Mode::Verify {
                    let _ = out.write_all(buf.as_bytes()).await;
                    return;
                }
                seq = r.highest_contiguous + 1;
                prev = r.tail_hash;
            }
            Mode::Corrupt(n) => {
                let done = {
                    let mut w = self.world.lock().unwrap();
                    match w.read(&self.site, &self.image) {
                        Ok(d) => {
                            let mut b = d.get(&n).map(|x| x.to_vec()).unwrap_or_else(|| vec![0u8; BLOCK]);
                            for x in &mut b[1024..1040] {
                                *x ^= 0xa5;
                            }
                            match w.write(&self.site, &self.image, n, Arc::from(b)) {
                                Written::Done => Ok(()),
                                other => Err(format!("failed to write block {n}: {other:?}")),
                            }
                        }
                        Err(e) => Err(e),
                    }
                };
                buf.push_str(&send(match done {
                    Ok(()) => Msg::Corrupted { seq: n },
                    Err(msg) => Msg::Error { msg },
                }));
                let _ = out.write_all(buf.as_bytes()).await;
                return;
            }
        }
        if out.write_all(buf.as_bytes()).await.is_err() {
            return;
        }
        let period = Duration::from_secs_f64(1.0 / self.rate.max(1) as f64);
        let mut next = tokio::time::Instant::now();
        let mut stopping = false;
        loop {
            // host commands first: stop, ping
            tokio::select! {
                biased;
                line = cmds.next_line() => {
                    match line {
                        Ok(Some(l)) => match l.trim() {
                            "stop" => stopping = true,
                            p => if let Some(n) = p.strip_prefix("ping ").and_then(|n| n.parse().ok()) {
                                if out.write_all(send(Msg::Pong { n }).as_bytes()).await.is_err() { return; }
                            },
                        },
                        _ => return,
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(next), if !stopping => {}
                _ = std::future::ready(()), if stopping => {}
            }
            self.thawed().await;
            if seq >= self.blocks {
                let _ = out.write_all(send(Msg::Full { seq: seq - 1 }).as_bytes()).await;
                return;
            }
            let r = Record {
                kind: if stopping { Kind::Stop } else { Kind::Data },
                seq,
                boot: self.boot,
                wall_ns: (Wt::now().unix_secs() * 1e9) as u64,
                mono_ns: Wt::now().0,
                prev_hash: prev,
            };
            let mut b = vec![0u8; BLOCK];
            prev = encode(&r, &mut b);
            let block: Arc<[u8]> = Arc::from(b);
            let t = tokio::time::Instant::now();
            // the write is durable once the storage says so; it waits while the storage cannot take it
            let replicas = self.world.lock().unwrap().write_delay(&self.site);
            tokio::time::sleep(Duration::from_micros(400) + replicas).await;
            loop {
                self.thawed().await;
                let r = self.world.lock().unwrap().write(&self.site, &self.image, seq, block.clone());
                match r {
                    Written::Done => break,
                    Written::Blocked => tokio::time::sleep(Duration::from_millis(100)).await,
                    Written::Failed(e) => {
                        let _ = out.write_all(send(Msg::Error { msg: format!("failed to write record {seq}: {e}") }).as_bytes()).await;
                        return;
                    }
                }
            }
            let lat_us = t.elapsed().as_micros() as u64;
            if stopping {
                let _ = out.write_all(send(Msg::Stopped { seq }).as_bytes()).await;
                return;
            }
            if out.write_all(send(Msg::Ack { seq, wall_ns: r.wall_ns, lat_us }).as_bytes()).await.is_err() {
                return;
            }
            seq += 1;
            next += period;
            let now = tokio::time::Instant::now();
            if next < now {
                next = now;
            }
        }
    }
}
