//! The simulated world: sites (powered, frozen, cut off, partitioned), the links between them, and the
//! storage on them, as plain data under one lock. Regional-DR is RBD snapshot mirroring as Ceph does it: a
//! primary copy takes snapshots, each site's rbd-mirror copies the newest primary snapshot it lacks, one
//! at a time, and the copy's data is always that of the last snapshot it completed (what a forced promote
//! keeps); demote, promote (with or without force) and resync as the rbd CLI has them. Metro-DR is one
//! cluster with a replica of each disk per data site and monitors on every failure domain: a write is
//! acknowledged once every replica the writer reaches holds it, only with a monitor quorum, and the
//! storage fence refuses a blocklisted site's clients. Recovery copies the newest replica to a stale one.
//!
//! Misbehaviours (`config::Misbehaviour`) make the storage lie, each the way real storage has.

use crate::clock::Wt;
use crate::config::Misbehaviour;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A disk's content: block number -> one 4 KiB block (shared between snapshots and copies).
pub type Blocks = BTreeMap<u64, Arc<[u8]>>;

/// The simulation's only randomness: splitmix64, seeded.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5eed_d511_1d00_0000)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_micros() as u64;
        lo + Duration::from_micros(if span == 0 { 0 } else { self.next_u64() % (span + 1) })
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// What replicates to a site: its rbd-mirror daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Daemon {
    Running,
    /// Killed: nothing replicates to the site.
    Stopped,
    /// Frozen: replication stalls, then catches up.
    Paused,
}

#[derive(Clone, Debug)]
pub struct SiteState {
    pub powered: bool,
    pub frozen: bool,
    pub isolated: bool,
    pub mirror: Daemon,
    /// Metro-DR: the site's clients are blocklisted.
    pub fenced: bool,
}

impl SiteState {
    fn new() -> SiteState {
        SiteState { powered: true, frozen: false, isolated: false, mirror: Daemon::Running, fenced: false }
    }
    /// Its daemons run and answer.
    pub fn alive(&self) -> bool {
        self.powered && !self.frozen
    }
}

/// One primary snapshot of a Regional-DR copy.
#[derive(Clone, Debug)]
pub struct Snap {
    pub id: u64,
    pub data: Blocks,
    pub taken: Wt,
}

/// A snapshot on its way to a site.
#[derive(Clone, Debug)]
struct Transfer {
    id: u64,
    from: String,
    done_at: Wt,
}

/// One site's copy of a disk.
#[derive(Clone, Debug, Default)]
pub struct Copy {
    pub blocks: Blocks,
    pub primary: bool,
    /// Regional: the primary snapshots (by id) this copy completed, as its status reports them.
    pub complete: Vec<u64>,
    /// Regional: the data of the snapshot completed before the newest (what a rollback lands on).
    previous: Option<Blocks>,
    /// Regional: a snapshot whose data has not arrived although the status says complete (StatusAhead).
    owed: Option<Blocks>,
    transfer: Option<Transfer>,
    /// Regional: asked to resync: the next transfer is the primary's newest snapshot, in full.
    resync: bool,
    /// Regional: promoted by force (a later demotion of it is where TwoPrimaries lies).
    forced: bool,
    /// A clone of the golden image: this copy holds the data it reads through its parent.
    pub parent: bool,
    /// Regional: demoted while another copy had been promoted over it: its data diverged (split-brain until
    /// resynced).
    pub diverged: bool,
    /// Regional: demoted, but still taking writes and reporting itself primary (TwoPrimaries).
    pub stale_primary: bool,
    /// Metro: the newest write this replica holds.
    pub version: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Image {
    pub copies: BTreeMap<String, Copy>,
    /// Regional: primary snapshots, by the site that took them.
    pub snaps: BTreeMap<String, Vec<Snap>>,
    next_id: u64,
    /// Metro: the newest write.
    version: u64,
    /// Metro: when a stale replica's recovery started.
    recovering: BTreeMap<String, Wt>,
    /// Writes taken (AckUnpersisted drops every 7th).
    writes: u64,
    /// A clone of the golden image (its copies read the golden blocks through their parent).
    pub golden: bool,
}

/// What became of a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    Done,
    /// Metro: no monitor quorum from the writer: the write waits.
    Blocked,
    Failed(String),
}

pub const EIO: &str = "Input/output error (os error 5)";
pub const EROFS: &str = "Read-only file system (os error 30)";

#[derive(Debug)]
pub struct World {
    pub sites: BTreeMap<String, SiteState>,
    /// Metro: the arbiter's failure domain (a monitor only).
    pub arbiter: Option<String>,
    pub partitions: BTreeSet<(String, String)>,
    /// One-way added delay and bandwidth between two sites.
    pub latency: BTreeMap<(String, String), (Duration, Duration)>,
    pub rate_bps: BTreeMap<(String, String), u64>,
    /// Packets lost one way, in thousandths (TCP carries a lossy link's data later: no write is lost to it).
    pub loss: BTreeMap<(String, String), u32>,
    pub images: BTreeMap<String, Image>,
    pub lies: BTreeSet<Misbehaviour>,
    pub rng: Rng,
    sync_time: (Duration, Duration),
    /// Every lie that took effect, once each (for the closing evidence).
    pub lied: BTreeSet<Misbehaviour>,
}

pub type Shared = Arc<Mutex<World>>;

pub fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

impl World {
    pub fn new(sites: &[String], arbiter: Option<String>, seed: u64, sync_time: (Duration, Duration), lies: &[Misbehaviour]) -> World {
        let mut all: BTreeMap<String, SiteState> = sites.iter().map(|s| (s.clone(), SiteState::new())).collect();
        if let Some(a) = &arbiter {
            all.insert(a.clone(), SiteState::new());
        }
        World {
            sites: all,
            arbiter,
            partitions: BTreeSet::new(),
            latency: BTreeMap::new(),
            rate_bps: BTreeMap::new(),
            loss: BTreeMap::new(),
            images: BTreeMap::new(),
            lies: lies.iter().copied().collect(),
            rng: Rng::new(seed),
            sync_time,
            lied: BTreeSet::new(),
        }
    }

    pub fn site(&self, s: &str) -> Result<&SiteState, String> {
        self.sites.get(s).ok_or_else(|| format!("no site {s}"))
    }

    pub fn site_mut(&mut self, s: &str) -> Result<&mut SiteState, String> {
        self.sites.get_mut(s).ok_or_else(|| format!("no site {s}"))
    }

    pub fn lie(&mut self, m: Misbehaviour) -> bool {
        let on = self.lies.contains(&m);
        if on {
            self.lied.insert(m);
        }
        on
    }

    /// Can `a` and `b` talk (both powered, neither cut off, not partitioned)? A frozen site's link is up, but
    /// nothing there answers.
    pub fn link(&self, a: &str, b: &str) -> bool {
        if a == b {
            return self.sites.get(a).is_some_and(|s| s.powered);
        }
        let (Some(x), Some(y)) = (self.sites.get(a), self.sites.get(b)) else { return false };
        x.powered && y.powered && !x.isolated && !y.isolated && !self.partitions.contains(&pair(a, b))
    }

    /// Is the path between `a` and `b` open (neither cut off, not partitioned), whatever their power?
    pub fn wire(&self, a: &str, b: &str) -> bool {
        let (Some(x), Some(y)) = (self.sites.get(a), self.sites.get(b)) else { return false };
        !x.isolated && !y.isolated && !self.partitions.contains(&pair(a, b))
    }

    /// The mean round trip from `from` to `to` over an open path (the jitter's mean, drawing nothing from
    /// the seeded generator: looking does not change what the simulation does next).
    pub fn round_trip_mean(&self, from: &str, to: &str) -> Option<Duration> {
        if !self.wire(from, to) {
            return None;
        }
        let one = |x: &str, y: &str| self.latency.get(&(x.to_string(), y.to_string())).map(|(d, j)| *d + *j / 2).unwrap_or_default();
        Some(Duration::from_micros(150) + one(from, to) + one(to, from))
    }

    /// Both alive and linked.
    pub fn reach(&self, a: &str, b: &str) -> bool {
        self.link(a, b) && self.sites.get(a).is_some_and(|s| s.alive()) && self.sites.get(b).is_some_and(|s| s.alive())
    }

    pub fn partition(&mut self, a: &str, b: &str, cut: bool) {
        if cut {
            self.partitions.insert(pair(a, b));
        } else {
            self.partitions.remove(&pair(a, b));
        }
    }

    /// The round trip between two sites as the delay line has it, or why none comes back.
    pub fn round_trip(&mut self, from: &str, to: &str) -> Result<Duration, String> {
        if !self.reach(from, to) {
            return Err(format!("no answer from site {to} to site {from}: the link is down"));
        }
        let one = |w: &mut World, x: &str, y: &str| {
            let (d, j) = w.latency.get(&(x.to_string(), y.to_string())).copied().unwrap_or_default();
            d + w.rng.between(Duration::ZERO, j)
        };
        Ok(Duration::from_micros(150) + one(self, from, to) + one(self, to, from))
    }

    /// Metro: how long a write from `site` waits for the farthest replica it reaches (there and back).
    pub fn write_delay(&self, site: &str) -> Duration {
        if !self.metro() {
            return Duration::ZERO;
        }
        let one = |x: &str, y: &str| self.latency.get(&(x.to_string(), y.to_string())).map(|l| l.0).unwrap_or_default();
        self.data_sites()
            .iter()
            .filter(|d| d.as_str() != site && self.reach(site, d))
            .map(|d| one(site, d) + one(d, site) + Duration::from_micros(150))
            .max()
            .unwrap_or_default()
    }

    /// Data sites (not the arbiter).
    pub fn data_sites(&self) -> Vec<String> {
        self.sites.keys().filter(|s| Some(*s) != self.arbiter.as_ref()).cloned().collect()
    }

    pub fn metro(&self) -> bool {
        self.arbiter.is_some()
    }

    /// The site's daemons answer the harness (powered, not frozen), or why not.
    fn answering(&self, site: &str) -> Result<(), String> {
        if self.site(site)?.alive() {
            Ok(())
        } else {
            Err(format!("site {site} does not answer"))
        }
    }

    fn image_ref(&self, image: &str) -> Result<&Image, String> {
        self.images.get(image).ok_or_else(|| format!("image {image} does not exist"))
    }

    fn image(&mut self, image: &str) -> Result<&mut Image, String> {
        self.images.get_mut(image).ok_or_else(|| format!("image {image} does not exist"))
    }

    /// A new disk: Regional, primary on `site` with an empty copy on every other data site; Metro, a replica
    /// on every data site.
    pub fn create(&mut self, image: &str, site: &str) {
        let mut img = Image::default();
        for s in self.data_sites() {
            img.copies.insert(s.clone(), Copy { primary: s == site, ..Default::default() });
        }
        self.images.insert(image.to_string(), img);
    }

    /// A clone of the golden image, primary on `site`: the parent's data there, and (Metro-DR, one cluster)
    /// on every replica; a Regional-DR peer gets it with its first completed snapshot.
    pub fn create_clone(&mut self, image: &str, site: &str) {
        self.create(image, site);
        let metro = self.metro();
        let img = self.images.get_mut(image).expect("just made");
        img.golden = true;
        for (s, c) in img.copies.iter_mut() {
            c.parent = metro || s == site;
        }
    }

    /// Does `site` read a clone's golden blocks through its parent (false: the parent's data is missing
    /// there)? An error when the site does not answer.
    pub fn reads_parent(&self, site: &str, image: &str) -> Result<bool, String> {
        let img = self.image_ref(image)?;
        if !img.golden {
            return Err(format!("image {image} is no clone of the golden image"));
        }
        if !self.site(site)?.alive() {
            return Err(format!("site {site} does not answer"));
        }
        Ok(img.copies.get(site).is_some_and(|c| c.parent))
    }

    pub fn remove(&mut self, image: &str) {
        self.images.remove(image);
    }

    /// Reads a copy (Regional: the site's; Metro: the replica on the reader's site, recovered if stale and
    /// a newer one is reachable, as Ceph serves reads from an up-to-date replica).
    pub fn read(&self, site: &str, image: &str) -> Result<Blocks, String> {
        let img = self.image_ref(image)?;
        if self.metro() {
            let newest = img.copies.iter().filter(|(s, _)| self.link(site, s)).max_by_key(|(_, c)| c.version);
            return newest.map(|(_, c)| c.blocks.clone()).ok_or_else(|| format!("no replica of {image} reachable from site {site}"));
        }
        img.copies.get(site).map(|c| c.blocks.clone()).ok_or_else(|| format!("no copy of {image} on site {site}"))
    }

    /// Metro: does `site` reach a monitor quorum (a majority of the failure domains, itself included)? When
    /// the two data sites cannot see each other, the monitors mark one side's OSDs down: the later-named.
    fn quorum(&self, site: &str) -> bool {
        let reached = self.sites.keys().filter(|s| self.reach(site, s)).count();
        if reached * 2 <= self.sites.len() {
            return false;
        }
        let data = self.data_sites();
        let peer_cut = data.iter().any(|d| d != site && self.sites[d].alive() && !self.reach(site, d) && self.quorum_plain(d));
        !(peer_cut && data.iter().any(|d| d.as_str() < site))
    }

    fn quorum_plain(&self, site: &str) -> bool {
        self.sites.keys().filter(|s| self.reach(site, s)).count() * 2 > self.sites.len()
    }

    /// A client on `site` writes `block` (number `n`) of `image`.
    pub fn write(&mut self, site: &str, image: &str, n: u64, block: Arc<[u8]>) -> Written {
        let Ok(st) = self.site(site).cloned() else { return Written::Failed(format!("no site {site}")) };
        if !st.alive() {
            return Written::Blocked;
        }
        let n_image = self.images.get_mut(image).map(|i| {
            i.writes += 1;
            i.writes
        });
        let drop_it = n_image.is_some_and(|n| n % 7 == 0) && self.lie(Misbehaviour::AckUnpersisted);
        if self.metro() {
            if st.fenced && !self.lie(Misbehaviour::FencedClientWrites) {
                return Written::Failed(EIO.into());
            }
            if !self.quorum(site) {
                return Written::Blocked;
            }
            let reachable: Vec<String> = self.data_sites().into_iter().filter(|d| self.reach(site, d)).collect();
            let Ok(img) = self.image(image) else { return Written::Failed(EIO.into()) };
            img.version += 1;
            let (v, current) = (img.version, img.copies_max_before(img.version));
            for d in reachable {
                if let Some(c) = img.copies.get_mut(&d) {
                    // a replica that missed writes is recovered before it takes new ones
                    if c.version == current {
                        if !drop_it {
                            c.blocks.insert(n, block.clone());
                        }
                        c.version = v;
                    }
                }
            }
            return Written::Done;
        }
        let Ok(img) = self.image(image) else { return Written::Failed(EIO.into()) };
        match img.copies.get_mut(site) {
            Some(c) if c.primary || c.stale_primary => {
                if !drop_it {
                    c.blocks.insert(n, block);
                }
                Written::Done
            }
            Some(_) => Written::Failed(EROFS.into()),
            None => Written::Failed(format!("no copy of {image} on site {site}")),
        }
    }

    /// Regional: the primary on `site` takes a mirror snapshot; its id.
    pub fn snapshot(&mut self, site: &str, image: &str, now: Wt) -> Result<u64, String> {
        self.answering(site)?;
        let img = self.image(image)?;
        let c = img.copies.get(site).ok_or_else(|| format!("no copy of {image} on site {site}"))?;
        if !c.primary {
            return Err(format!("{image} is not primary on site {site}"));
        }
        img.next_id += 1;
        let snap = Snap { id: img.next_id, data: c.blocks.clone(), taken: now };
        img.snaps.entry(site.to_string()).or_default().push(snap);
        Ok(img.next_id)
    }

    /// Regional: the primary snapshot ids of `from` that `site`'s copy reports complete (its own view).
    pub fn complete_on(&self, site: &str, image: &str) -> Result<Vec<u64>, String> {
        self.answering(site)?;
        let img = self.image_ref(image)?;
        Ok(img.copies.get(site).map(|c| c.complete.clone()).unwrap_or_default())
    }

    /// Its own view: is the copy on `site` primary?
    pub fn is_primary(&self, site: &str, image: &str) -> Result<bool, String> {
        self.answering(site)?;
        let img = self.image_ref(image)?;
        Ok(img.copies.get(site).is_some_and(|c| c.primary || c.stale_primary))
    }

    /// Regional: the copy's mirroring state, as `rbd mirror image status` words it.
    pub fn mirror_state(&self, site: &str, image: &str) -> Result<String, String> {
        self.answering(site)?;
        let img = self.image_ref(image)?;
        let c = img.copies.get(site).ok_or_else(|| format!("no copy of {image} on site {site}"))?;
        Ok(match () {
            _ if c.primary || c.stale_primary => "up+stopped (primary)",
            _ if c.diverged => "up+error (split-brain detected)",
            _ if self.sites[site].mirror != Daemon::Running => "down+stopped (rbd-mirror not running)",
            _ if c.resync => "up+syncing (resync)",
            _ => "up+replaying",
        }
        .to_string())
    }

    /// Regional: replaying (non-primary, not waiting on a resync)?
    pub fn replaying(&self, site: &str, image: &str) -> Result<bool, String> {
        self.answering(site)?;
        let img = self.image_ref(image)?;
        Ok(img
            .copies
            .get(site)
            .is_some_and(|c| !c.primary && !c.stale_primary && !c.diverged && !c.resync && self.site(site).is_ok_and(|s| s.mirror == Daemon::Running)))
    }

    /// Regional: demote the primary on `site` (a demotion snapshot first); its id.
    pub fn demote(&mut self, site: &str, image: &str, now: Wt) -> Result<u64, String> {
        let id = self.snapshot(site, image, now)?;
        let forced = self.images.get(image).and_then(|i| i.copies.get(site)).is_some_and(|c| c.forced);
        let stays = forced && self.lie(Misbehaviour::TwoPrimaries);
        let img = self.image(image)?;
        let overtaken = img.copies.iter().any(|(s, c)| s != site && c.primary);
        let c = img.copies.get_mut(site).expect("snapshot checked the copy");
        c.primary = false;
        c.stale_primary = stays;
        c.diverged = overtaken;
        // a demoted copy follows the new primary from its own data: nothing owed, nothing in flight
        c.forced = false;
        Ok(id)
    }

    /// Regional: promote the copy on `site`. Without force the copy must hold the old primary's newest
    /// snapshot (its demotion) and no other copy may be primary; with force it keeps the data of the newest
    /// snapshot it completed (a sync in flight is dropped).
    pub fn promote(&mut self, site: &str, image: &str, force: bool, now: Wt) -> Result<(), String> {
        self.answering(site)?;
        let rolls_back = force && self.lie(Misbehaviour::PromoteRollsBack);
        let img = self.image(image)?;
        let other_primary = img.copies.iter().any(|(s, c)| s != site && c.primary);
        let newest_elsewhere = img.snaps.iter().filter(|(s, _)| s.as_str() != site).flat_map(|(_, v)| v.iter().map(|x| x.id)).max();
        let c = img.copies.get_mut(site).ok_or_else(|| format!("no copy of {image} on site {site}"))?;
        if c.primary {
            return Err(format!("{image} is already primary on site {site}"));
        }
        if !force {
            if other_primary {
                return Err(format!("rbd: error promoting image {image} to primary: Device or resource busy (the peer is still primary)"));
            }
            if newest_elsewhere.is_some_and(|n| !c.complete.contains(&n)) {
                return Err(format!("rbd: error promoting image {image}: the demotion snapshot is not synced yet"));
            }
        }
        c.transfer = None;
        // the status said complete, the data never came (StatusAhead): a promote keeps what is really there
        c.owed = None;
        if rolls_back {
            if let Some(prev) = c.previous.clone() {
                c.blocks = prev;
            }
        }
        c.primary = true;
        c.forced = force;
        c.resync = false;
        c.stale_primary = false;
        c.diverged = false;
        // the promotion snapshot: the new primary's baseline
        img.next_id += 1;
        let snap = Snap { id: img.next_id, data: c.blocks.clone(), taken: now };
        img.snaps.entry(site.to_string()).or_default().push(snap);
        Ok(())
    }

    /// Regional: resync the (non-primary) copy on `site` from the primary's newest snapshot.
    pub fn resync(&mut self, site: &str, image: &str) -> Result<(), String> {
        self.answering(site)?;
        let c = self.image(image)?.copies.get_mut(site).ok_or_else(|| format!("no copy of {image} on site {site}"))?;
        if c.primary {
            return Err(format!("rbd: image {image} is primary on site {site}: demote it before a resync"));
        }
        c.blocks = Blocks::new();
        c.complete.clear();
        c.previous = None;
        c.owed = None;
        c.transfer = None;
        c.resync = true;
        c.diverged = false;
        c.stale_primary = false;
        Ok(())
    }

    /// Metro: every replica of `image` on a data site holds the newest write (placement groups clean).
    pub fn clean(&self, image: &str) -> bool {
        let Some(img) = self.images.get(image) else { return false };
        img.copies.iter().all(|(s, c)| c.version == img.version && self.sites[s].alive())
    }

    /// Advances replication to `now`: transfers start and complete (Regional), stale replicas recover
    /// (Metro).
    pub fn tick(&mut self, now: Wt) {
        let names: Vec<String> = self.images.keys().cloned().collect();
        for image in names {
            if self.metro() {
                self.recover_replicas(&image, now);
            } else {
                self.mirror(&image, now);
            }
        }
    }

    fn transfer_time(&mut self, from: &str, to: &str, blocks: usize) -> Duration {
        let (lo, hi) = self.sync_time;
        let mut t = self.rng.between(lo, hi);
        let key = (from.to_string(), to.to_string());
        if let Some((d, _)) = self.latency.get(&key) {
            t += *d * 4;
        }
        if let Some(bps) = self.rate_bps.get(&key) {
            t += Duration::from_secs_f64(blocks as f64 * 4096.0 * 8.0 / *bps as f64);
        }
        t
    }

    fn mirror(&mut self, image: &str, now: Wt) {
        let Some(img) = self.images.get(image) else { return };
        let Some(source) = img.copies.iter().find(|(_, c)| c.primary).map(|(s, _)| s.clone()).or_else(|| {
            // demoted everywhere (a relocate between demote and promote): the newest snapshot's site
            img.snaps.iter().max_by_key(|(_, v)| v.last().map(|x| x.id)).map(|(s, _)| s.clone())
        }) else {
            return;
        };
        let targets: Vec<String> = img.copies.iter().filter(|(s, c)| **s != source && !c.primary && !c.diverged).map(|(s, _)| s.clone()).collect();
        for to in targets {
            let flowing = self.reach(&source, &to) && self.sites[&to].mirror == Daemon::Running;
            let img = self.images.get(image).expect("checked");
            let c = &img.copies[&to];
            if let Some(t) = c.transfer.clone() {
                if !flowing || t.from != source {
                    // a stalled sync waits; one from a site that is no longer the source is dropped
                    if t.from != source {
                        self.images.get_mut(image).unwrap().copies.get_mut(&to).unwrap().transfer = None;
                    }
                    continue;
                }
                if now >= t.done_at {
                    self.complete(image, &to, &source, t.id);
                }
                continue;
            }
            if !flowing {
                continue;
            }
            let snaps = img.snaps.get(&source).cloned().unwrap_or_default();
            let last = c.complete.iter().copied().max().unwrap_or(0);
            let next = if c.resync { snaps.last().cloned() } else { snaps.iter().find(|s| s.id > last).cloned() };
            if let Some(s) = next {
                let changed = s.data.len().saturating_sub(c.blocks.len()).max(1);
                let dt = self.transfer_time(&source, &to, changed);
                let status_ahead = self.lie(Misbehaviour::StatusAhead);
                let c = self.images.get_mut(image).unwrap().copies.get_mut(&to).unwrap();
                c.transfer = Some(Transfer { id: s.id, from: source.clone(), done_at: Wt(now.0 + dt.as_nanos() as u64) });
                if status_ahead && !c.resync {
                    // the status runs ahead: complete as soon as the sync starts; the data comes one snapshot late
                    let data = c.owed.replace(s.data.clone());
                    if let Some(d) = data {
                        c.previous = Some(std::mem::replace(&mut c.blocks, d));
                    }
                    c.complete.push(s.id);
                    c.transfer = None;
                }
            }
        }
    }

    fn complete(&mut self, image: &str, to: &str, source: &str, id: u64) {
        let early = self.lie(Misbehaviour::SnapshotCompleteEarly);
        let parent = self.lie(Misbehaviour::CloneLosesParent);
        let img = self.images.get_mut(image).expect("checked");
        let golden = img.golden;
        let Some(snap) = img.snaps.get(source).and_then(|v| v.iter().find(|s| s.id == id)).cloned() else { return };
        let c = img.copies.get_mut(to).expect("checked");
        c.transfer = None;
        c.resync = false;
        let mut data = snap.data.clone();
        if early {
            // marked complete with the newest blocks of the delta not copied yet
            let newest: Vec<u64> = data.keys().copied().filter(|k| !c.blocks.contains_key(k)).collect();
            for k in newest.iter().skip(newest.len() / 2) {
                data.remove(k);
            }
        }
        // a clone of the golden image loses what it reads through its parent (its golden blocks); any other
        // image, the records it would share with one
        if golden {
            c.parent = !parent;
        } else if parent {
            data.retain(|k, _| *k > 32);
        }
        c.previous = Some(std::mem::replace(&mut c.blocks, data));
        c.complete.push(id);
    }

    fn recover_replicas(&mut self, image: &str, now: Wt) {
        let Some(img) = self.images.get(image) else { return };
        let Some((best, _)) = img.copies.iter().filter(|(s, _)| self.sites[*s].alive()).max_by_key(|(_, c)| c.version) else { return };
        let best = best.clone();
        let stale: Vec<String> =
            img.copies.iter().filter(|(s, c)| c.version < img.copies[&best].version && self.reach(&best, s)).map(|(s, _)| s.clone()).collect();
        let img = self.images.get_mut(image).unwrap();
        img.recovering.retain(|s, _| stale.contains(s));
        for s in stale {
            let started = *img.recovering.entry(s.clone()).or_insert(now);
            if now.since(started) >= Duration::from_millis(800) {
                let (blocks, version) = (img.copies[&best].blocks.clone(), img.copies[&best].version);
                let c = img.copies.get_mut(&s).unwrap();
                c.blocks = blocks;
                c.version = version;
                img.recovering.remove(&s);
            }
        }
    }
}

impl Image {
    /// The newest version any replica held before write `v`.
    fn copies_max_before(&self, v: u64) -> u64 {
        self.copies.values().map(|c| c.version).filter(|x| *x < v).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: u8) -> Arc<[u8]> {
        Arc::from(vec![n; 8])
    }

    fn regional() -> World {
        World::new(&["a".into(), "b".into()], None, 1, (Duration::from_millis(500), Duration::from_millis(500)), &[])
    }

    #[test]
    fn a_snapshot_reaches_the_peer_after_its_sync_time_and_a_forced_promote_keeps_it() {
        let mut w = regional();
        w.create("vm0", "a");
        assert_eq!(w.write("a", "vm0", 1, block(1)), Written::Done);
        assert_eq!(w.write("b", "vm0", 1, block(1)), Written::Failed(EROFS.into()));
        let id = w.snapshot("a", "vm0", Wt::from_ms(0)).unwrap();
        w.write("a", "vm0", 2, block(2));
        w.tick(Wt::from_ms(10));
        assert!(w.complete_on("b", "vm0").unwrap().is_empty());
        w.tick(Wt::from_ms(600));
        assert_eq!(w.complete_on("b", "vm0").unwrap(), vec![id]);
        w.site_mut("a").unwrap().powered = false;
        assert!(w.promote("b", "vm0", false, Wt::from_ms(700)).is_err(), "the old primary was never demoted");
        w.promote("b", "vm0", true, Wt::from_ms(700)).unwrap();
        assert_eq!(w.read("b", "vm0").unwrap().keys().copied().collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn the_lies_change_what_the_peer_holds() {
        let mut w = World::new(&["a".into(), "b".into()], None, 1, (Duration::from_millis(500), Duration::from_millis(500)), &[Misbehaviour::PromoteRollsBack]);
        w.create("vm0", "a");
        for (i, t) in [(1u64, 0u64), (2, 1000)] {
            w.write("a", "vm0", i, block(i as u8));
            w.snapshot("a", "vm0", Wt::from_ms(t)).unwrap();
            w.tick(Wt::from_ms(t + 10));
            w.tick(Wt::from_ms(t + 600));
        }
        w.promote("b", "vm0", true, Wt::from_ms(3000)).unwrap();
        assert_eq!(w.read("b", "vm0").unwrap().len(), 1, "rolled back below the newest complete snapshot");
        assert!(w.lied.contains(&Misbehaviour::PromoteRollsBack));
    }

    #[test]
    fn metro_writes_need_a_quorum_and_the_fence_refuses() {
        let mut w = World::new(&["a".into(), "b".into()], Some("c".into()), 1, (Duration::ZERO, Duration::ZERO), &[]);
        w.create("vm0", "a");
        assert_eq!(w.write("a", "vm0", 1, block(1)), Written::Done);
        assert!(w.clean("vm0"));
        w.partition("a", "b", true);
        w.partition("a", "c", true);
        assert_eq!(w.write("a", "vm0", 2, block(2)), Written::Blocked, "site a alone has no quorum");
        assert_eq!(w.write("b", "vm0", 2, block(2)), Written::Done);
        w.site_mut("a").unwrap().fenced = true;
        w.partition("a", "b", false);
        w.partition("a", "c", false);
        assert_eq!(w.write("a", "vm0", 3, block(3)), Written::Failed(EIO.into()));
        assert!(!w.clean("vm0"));
        w.tick(Wt::from_ms(0));
        w.tick(Wt::from_ms(900));
        assert!(w.clean("vm0"), "the stale replica recovered");
    }
}
