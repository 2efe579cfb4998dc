//! One lab site: a network namespace holding a one-mon, one-mgr, one-OSD Ceph cluster (BlueStore on a sparse
//! file) and its rbd-mirror daemon, all children of the harness.

use crate::error::{from_wait, Cause, EnvError};
use crate::procs::{self, Daemon};
use crate::wait;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What it takes to run commands against a site: cheap to clone into background tasks.
#[derive(Clone, Debug)]
pub struct SiteRef {
    pub name: String,
    pub ns: String,
    pub ip: String,
    pub dir: PathBuf,
    pub cmd_deadline: Duration,
}

pub struct Site {
    pub r: SiteRef,
    pub daemons: Vec<Daemon>,
    /// How each daemon of the site was started (name, program, args), to power the site on again.
    started: Vec<(String, String, Vec<String>)>,
    /// The site's OSDs (a stretch-mode data site has two, one per storage host; the arbiter none).
    pub osds: Vec<u32>,
}

impl std::ops::Deref for Site {
    type Target = SiteRef;
    fn deref(&self) -> &SiteRef {
        &self.r
    }
}

const MGR_DISABLED: &str = "alerts,diskprediction_local,influx,insights,iostat,localpool,mirroring,nfs,osd_perf_query,osd_support,prometheus,restful,selftest,snap_schedule,stats,telegraf,test_orchestrator,zabbix,dashboard,cephadm,rook,k8sevents,mds_autoscaler,hello";

impl Site {
    pub fn new(name: &str, ns: &str, ip: &str, dir: PathBuf, cmd_deadline: Duration) -> Site {
        Site { r: SiteRef { name: name.into(), ns: ns.into(), ip: ip.into(), dir, cmd_deadline }, daemons: vec![], started: vec![], osds: vec![] }
    }
}

impl SiteRef {
    pub fn conf(&self) -> PathBuf {
        self.dir.join("ceph.conf")
    }

    /// A Ceph command or daemon of this site failed: the storage, i.e. the system under test (the lab's
    /// bring-up re-blames it on the harness).
    pub fn err(&self, what: &str, detail: impl Into<String>) -> EnvError {
        EnvError::Site { site: self.name.clone(), what: what.into(), detail: detail.into(), cause: Cause::System }
    }

    /// A Ceph tool run inside this site's namespace with this site's configuration.
    pub fn tool(&self, program: &str) -> tokio::process::Command {
        let mut c = procs::in_netns(&self.ns, program);
        c.env("CEPH_CONF", self.conf());
        // The rbd CLI prints snapshot timestamps in local time; UTC makes them independent of the host's
        // zone (`mirror::parse_ceph_timestamp` reads UTC).
        c.env("TZ", "UTC");
        c
    }

    /// Runs a Ceph CLI (`ceph`, `rbd`) with the command deadline; Err names the site and the command.
    pub async fn cli(&self, program: &str, args: &[&str]) -> Result<String, EnvError> {
        self.cli_within(program, args, self.cmd_deadline).await
    }

    pub async fn cli_within(&self, program: &str, args: &[&str], deadline: Duration) -> Result<String, EnvError> {
        let mut c = self.tool(program);
        if program == "ceph" {
            c.args(["--connect-timeout", &deadline.as_secs().max(1).to_string()]);
        }
        c.args(args);
        let what = format!("{program} {}", args.join(" "));
        let out = procs::run(c, deadline, &what).await.map_err(|e| self.err(&what, e))?;
        if !out.ok {
            let detail: Vec<&str> = out.stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            let detail = if detail.is_empty() { "exit status non-zero".to_string() } else { detail.join(" | ") };
            return Err(self.err(&what, detail));
        }
        Ok(out.stdout)
    }
}

/// A monitor's address as ceph.conf and monmaps write it.
pub fn mon_addr(ip: &str) -> String {
    format!("[v2:{ip}:3300,v1:{ip}:6789]")
}

/// What differs between one site's own cluster and a cluster stretched over several sites.
pub struct ConfShape {
    pub mon_host: String,
    pub public_network: String,
    /// Lines added to [global].
    pub global: String,
    /// Lines added to [osd].
    pub osd: String,
}

impl ConfShape {
    /// A cluster of its own: one monitor, one OSD, pools of one replica.
    pub fn single(ip: &str) -> ConfShape {
        ConfShape {
            mon_host: mon_addr(ip),
            public_network: format!("{}.0/24", ip.rsplit_once('.').map(|x| x.0).unwrap_or(ip)),
            global: "osd_pool_default_size = 1\nosd_pool_default_min_size = 1\nosd_crush_chooseleaf_type = 0\nmon_allow_pool_size_one = true\n".into(),
            osd: String::new(),
        }
    }
}

impl Site {
    pub fn write_conf(&self, fsid: &str, shape: &ConfShape) -> std::io::Result<()> {
        let d = self.dir.display();
        let (mon_host, net, global, osd) = (&shape.mon_host, &shape.public_network, &shape.global, &shape.osd);
        let conf = format!(
            "[global]
fsid = {fsid}
mon_host = {mon_host}
public_network = {net}
{global}auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
keyring = {d}/admin.keyring
run_dir = {d}/run
admin_socket = {d}/run/$cluster-$name.$pid.asok
log_file = {d}/log/$cluster-$name.log
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
# every lab's pools keep their 8 PGs: with the autoscaler on, the mgr split the rbd pool to 32 PGs on both
# Regional-DR sites about 55 s after it was made, mid-drill: the PGs peered again and a mirror round took
# 2.1-5.2 s instead of ~1.2 (5 runs of 5; one failed its drill for lag)
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
auth_allow_insecure_global_id_reclaim = false
mon_warn_on_insecure_global_id_reclaim_allowed = false
ms_bind_ipv6 = false
mon_data_avail_warn = 2
mon_data_avail_crit = 1
osd_client_watch_timeout = 10
mgr_disabled_modules = {MGR_DISABLED}
[mon]
mon_data = {d}/mon/$id
mon_cluster_log_file = {d}/log/$cluster.log
[mgr]
mgr_data = {d}/mgr
keyring = {d}/mgr/keyring
[client.rbd-mirror-peer]
# rbd-mirror's connection to the PEER site only (upstream's rbd_mirror_remote_osd_op_timeout, PR 52632):
# Ceph 16 waits forever on ops to a peer that vanished, and a forced promote then hangs behind them:
# it waits for rbd-mirror to let go of the image, which it does once its ops to the lost peer time out
# (measured: 10 s here made a forced promote take 10-28 s; 5 s, 6-15 s).
rados_osd_op_timeout = 5
rados_mon_op_timeout = 5
[osd]
osd_data = {d}/osd$id
keyring = {d}/osd$id/keyring
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = 10737418240
bluestore_block_db_create = false
bluestore_block_wal_create = false
osd_memory_target = 939524096
bluestore_cache_autotune = false
bluestore_cache_size = 134217728
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2
{osd}"
        );
        std::fs::write(self.conf(), conf)
    }

    /// Creates the cluster from nothing and starts its daemons; returns once the OSD serves I/O.
    pub async fn bootstrap(&mut self) -> Result<(), EnvError> {
        for sub in ["mon", "mgr", "osd0", "run", "log"] {
            std::fs::create_dir_all(self.dir.join(sub)).map_err(|e| self.err("create run directory", e.to_string()))?;
        }
        let fsid = uuid();
        self.write_conf(&fsid, &ConfShape::single(&self.ip)).map_err(|e| self.err("write ceph.conf", e.to_string()))?;
        let d = self.dir.clone();
        let p = |f: &str| d.join(f).display().to_string();
        let (monk, admk) = (p("mon.keyring"), p("admin.keyring"));
        self.local("ceph-authtool", &["--create-keyring", &monk, "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"]).await?;
        self.local(
            "ceph-authtool",
            &["--create-keyring", &admk, "--gen-key", "-n", "client.admin", "--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *"],
        )
        .await?;
        self.local("ceph-authtool", &[&monk, "--import-keyring", &admk]).await?;
        let addr = format!("[v2:{ip}:3300,v1:{ip}:6789]", ip = self.ip);
        self.local("monmaptool", &["--create", "--addv", "a", &addr, "--fsid", &fsid, &p("monmap")]).await?;
        // --mkfs must run inside the namespace: public_network has to match a local address.
        self.cli("ceph-mon", &["--mkfs", "-i", "a", "--monmap", &p("monmap"), "--keyring", &monk]).await?;
        self.start("mon", "ceph-mon", &["-i", "a", "-f"])?;
        self.wait_cli_ok("mon answers", Duration::from_secs(30), "ceph", &["mon", "stat"]).await?;
        let mgr_key = self.cli("ceph", &["auth", "get-or-create", "mgr.x", "mon", "allow profile mgr", "osd", "allow *"]).await?;
        std::fs::write(d.join("mgr/keyring"), mgr_key).map_err(|e| self.err("write mgr keyring", e.to_string()))?;
        self.start("mgr", "ceph-mgr", &["-i", "x", "-f"])?;
        let osd_uuid = uuid();
        let secret = self.local("ceph-authtool", &["--gen-print-key"]).await?.trim().to_string();
        let secret_file = d.join("osd-secret.json");
        std::fs::write(&secret_file, format!("{{\"cephx_secret\": \"{secret}\"}}")).map_err(|e| self.err("write osd secret", e.to_string()))?;
        let id = self.cli("ceph", &["osd", "new", &osd_uuid, "-i", &secret_file.display().to_string()]).await?.trim().to_string();
        if id != "0" {
            return Err(self.err("create osd", format!("expected osd id 0, got {id:?}")));
        }
        self.local("ceph-authtool", &["--create-keyring", &p("osd0/keyring"), "--name", "osd.0", "--add-key", &secret]).await?;
        self.cli("ceph-osd", &["-i", "0", "--mkfs", "--osd-uuid", &osd_uuid]).await?;
        self.start("osd", "ceph-osd", &["-i", "0", "-f"])?;
        // known, so that powering the site on again waits for its OSD to serve
        self.osds = vec![0];
        self.wait_osd().await
    }

    /// A Ceph tool that needs no network (key and map generation), run in the root namespace.
    pub async fn local(&self, program: &str, args: &[&str]) -> Result<String, EnvError> {
        let mut c = tokio::process::Command::new(program);
        c.args(args).kill_on_drop(true);
        let what = format!("{program} {}", args.first().copied().unwrap_or(""));
        let out = procs::run(c, self.cmd_deadline, &what).await.map_err(|e| self.err(&what, e))?;
        if !out.ok {
            return Err(self.err(&what, out.stderr.trim().to_string()));
        }
        Ok(out.stdout)
    }

    pub fn start(&mut self, name: &str, program: &str, args: &[&str]) -> Result<(), EnvError> {
        let mut c = self.tool(program);
        c.args(args);
        let log = self.dir.join("log").join(format!("{name}.out"));
        let d = Daemon::spawn(name, c, &log).map_err(|e| self.err(&format!("start {program}"), e.to_string()))?;
        self.daemons.retain(|x| x.name != name);
        self.daemons.push(d);
        self.started.retain(|x| x.0 != name);
        self.started.push((name.into(), program.into(), args.iter().map(|a| a.to_string()).collect()));
        Ok(())
    }

    /// Polls a Ceph CLI until it succeeds or `deadline` passes; fails fast if a daemon of this site died.
    pub async fn wait_cli_ok(&mut self, what: &str, deadline: Duration, program: &str, args: &[&str]) -> Result<Duration, EnvError> {
        let t0 = Instant::now();
        let r = self.r.clone();
        let daemons = std::sync::Mutex::new(&mut self.daemons);
        let check = || async {
            if r.cli_within(program, args, Duration::from_secs(4)).await.is_ok() {
                return Ok(Some(()));
            }
            let mut ds = daemons.lock().unwrap();
            for d in ds.iter_mut() {
                if !d.alive() {
                    return Err(r.err(what, format!("{} exited: {}", d.name, d.log_tail(3))));
                }
            }
            Ok(None)
        };
        wait::until(what, deadline, check, wait::every(Duration::from_millis(250))).await.map_err(|e| from_wait(&self.r.name, Cause::System, e))?;
        Ok(t0.elapsed())
    }

    /// Each of the site's OSDs itself answers (the mon's map can say "up" for a dead OSD for minutes).
    pub async fn wait_osd(&mut self) -> Result<(), EnvError> {
        for id in self.osds.clone() {
            let osd = format!("osd.{id}");
            self.wait_cli_ok(&format!("{osd} serves"), Duration::from_secs(60), "ceph", &["tell", &osd, "version"]).await?;
        }
        Ok(())
    }

    /// Starts a daemon of the site again as it was first started (a storage host back after its power
    /// loss); nothing if it runs.
    pub fn restart(&mut self, name: &str) -> Result<(), EnvError> {
        if self.daemon_mut(name).is_some_and(|d| d.alive()) {
            return Ok(());
        }
        let Some((_, program, args)) = self.started.iter().find(|x| x.0 == name).cloned() else {
            return Err(EnvError::Usage(format!("site {} never ran a daemon named {name}", self.name)));
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.start(name, &program, &args)
    }

    /// Restarts mon, mgr, OSD (and rbd-mirror if this site has one) after a power loss.
    pub async fn power_on(&mut self) -> Result<(), EnvError> {
        for (name, program, args) in self.started.clone() {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            self.start(&name, &program, &args)?;
        }
        self.wait_osd().await
    }

    pub fn start_rbd_mirror(&mut self) -> Result<(), EnvError> {
        let id = format!("rbd-mirror.{}", self.name);
        let kr = self.dir.join("rbd-mirror.keyring").display().to_string();
        // The op timeouts for the peer connection are in ceph.conf ([client.rbd-mirror-peer]): bounded there
        // only, so the daemon's own local writes are never cut short. The leader heartbeat: a daemon started
        // again after its site lost power finds its dead predecessor holding the pool's leader lock and its
        // images; it breaks the lock after 3 heartbeats and drops the dead instance after 6 (Ceph's
        // Instances::schedule_remove_task), so at Ceph's 5 s a repair's resync waited ~50 s before copying a
        // byte; at 1 s it waits ~6 s. One daemon per site: no peer instance misses a heartbeat under load.
        self.start(
            "rbd-mirror",
            "rbd-mirror",
            &["-f", "--id", &id, "--keyring", &kr, "--rbd_mirror_image_state_check_interval=5", "--rbd_mirror_leader_heartbeat_interval=1"],
        )
    }

    pub fn daemon_mut(&mut self, name: &str) -> Option<&mut Daemon> {
        self.daemons.iter_mut().find(|d| d.name == name)
    }

    /// SIGKILL of every process of the site at once (power loss): its daemons and its VMs; the namespace
    /// stays. The daemons are reaped after.
    pub async fn kill_all(&mut self) {
        for pid in procs::netns_pids(&self.ns) {
            // SAFETY: kill(2) on a process inside a namespace the harness made.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for d in &mut self.daemons {
            d.kill().await;
        }
        self.daemons.clear();
    }

    /// Orderly stop: SIGTERM, SIGKILL after a grace period.
    pub async fn stop_all(&mut self) {
        let mut ds = std::mem::take(&mut self.daemons);
        futures::future::join_all(ds.iter_mut().map(|d| d.stop(Duration::from_secs(3)))).await;
        for pid in procs::netns_pids(&self.ns) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// Its daemons run (the OSD, or the monitor of a site without one).
    pub fn powered(&mut self) -> bool {
        let key = if self.osds.is_empty() { "mon" } else { "osd" };
        self.daemons.iter_mut().any(|d| d.name == key && d.alive())
    }
}

pub fn uuid() -> String {
    let mut b = [0u8; 16];
    unsafe { libc::getrandom(b.as_mut_ptr() as *mut libc::c_void, 16, 0) };
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
