//! The rules. Each is a pure function from the objects (and options) to findings; ids are stable.

use super::{Finding, Object, Severity};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AppMode {
    /// Managed if the tree holds a kustomization or GitOps (Argo CD / RHACM) markers, else discovered.
    Auto,
    /// RHACM-managed application, delivered by GitOps.
    Managed,
    /// RHACM-discovered application (created by the console, MTV, the CLI...).
    Discovered,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DrKind {
    Regional,
    Metro,
}

#[derive(Clone, Debug)]
pub struct Options {
    /// The common label that selects a discovered application's resources; None: found per application
    /// (the label its VirtualMachine shares with most of its resources, whatever the key).
    pub app_label: Option<String>,
    pub mode: AppMode,
    pub dr: DrKind,
    /// The RPO the environment declares (a DRPolicy interval above it is reported).
    pub rpo: Option<Duration>,
    /// The replication class flattens cloned images (cloned PVCs can then be protected).
    pub flatten: bool,
    /// Inter-site round trip measured live (Metro-DR needs 10 ms or less).
    pub rtt: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options { app_label: None, mode: AppMode::Auto, dr: DrKind::Regional, rpo: None, flatten: false, rtt: None }
    }
}

/// Rule metadata: (id, name, severity, summary, fix).
pub const RULES: &[(&str, &str, Severity, &str)] = &[
    ("DR001", "discovered-app-label", Severity::Error, "Every resource of a discovered VM application (VirtualMachine, DataVolume, PersistentVolumeClaim, Service, Route, Secret, ConfigMap, instancetype, preference) carries the application's common label."),
    ("DR002", "label-on-vmi-or-pod", Severity::Error, "The application label is not put on VirtualMachineInstances or pods: OpenShift Virtualization creates and manages them."),
    ("DR003", "label-in-vm-template", Severity::Warning, "The application label in a VM's spec.template labels propagates to its VMI and virt-launcher pod."),
    ("DR010", "gitops-datavolume", Severity::Warning, "A GitOps-managed application does not use dataVolumeTemplates or standalone DataVolumes: they create PVCs implicitly."),
    ("DR020", "cloned-pvc", Severity::Error, "Under Regional-DR, a PVC cloned from another PVC cannot be protected unless the replication class flattens images."),
    ("DR030", "registry-pull-method", Severity::Warning, "A DataVolume importing from a registry uses pullMethod: node (the node's pull secret)."),
    ("DR031", "floating-image-tag", Severity::Warning, "Images are pinned to a version or digest, not a floating tag (latest, or no tag)."),
    ("DR040", "multi-disk-regional", Severity::Warning, "Under Regional-DR, each disk of a multi-disk VM is replicated at a slightly different point in time."),
    ("DR050", "drpolicy-interval", Severity::Error, "A DRPolicy's schedulingInterval is not larger than the RPO the environment declares."),
    ("DR060", "metro-rtt", Severity::Error, "Metro-DR (synchronous) needs the sites at most 10 ms apart."),
    ("DR061", "metro-stretch-mode", Severity::Error, "Metro-DR on one Ceph cluster runs it in stretch mode (two data zones and an arbiter, 5 monitors), its pools 4 replicas, 2 per data zone."),
];

fn rule(id: &'static str) -> (&'static str, &'static str, Severity) {
    let r = RULES.iter().find(|r| r.0 == id).expect("known rule");
    (r.0, r.1, r.2)
}

fn finding(id: &'static str, o: &Object, line: usize, message: String, fix: &str) -> Finding {
    let (rule, name, severity) = rule(id);
    Finding { rule, name, severity, object: o.id(), file: o.source.file.clone(), line, message, fix: fix.into() }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn arr<'a>(v: &'a Value, ptr: &str) -> impl Iterator<Item = &'a Value> {
    v.pointer(ptr).and_then(Value::as_array).into_iter().flatten()
}

fn is_vm(o: &Object) -> bool {
    o.kind == "VirtualMachine"
}

/// Whether the objects look GitOps-managed (for `--mode auto`).
pub fn looks_managed(objects: &[Object], has_kustomization: bool) -> bool {
    has_kustomization
        || objects.iter().any(|o| {
            matches!(o.kind.as_str(), "Application" | "ApplicationSet" | "Subscription" | "Kustomization")
                || o.annotations().any(|(k, _)| k.starts_with("argocd.argoproj.io/") || k.starts_with("apps.open-cluster-management.io/"))
                || o.value
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .is_some_and(|l| l.keys().any(|k| k.starts_with("app.kubernetes.io/instance") || k.starts_with("argocd.argoproj.io/")))
        })
}

/// (kind, name) of the namespaced objects a VM refers to.
fn vm_members(vm: &Object, objects: &[Object]) -> Vec<(String, String)> {
    let v = &vm.value;
    let mut m: Vec<(String, String)> = vec![];
    for vol in arr(v, "/spec/template/spec/volumes") {
        if let Some(n) = str_at(vol, "/dataVolume/name") {
            m.push(("DataVolume".into(), n.into()));
            m.push(("PersistentVolumeClaim".into(), n.into()));
        }
        if let Some(n) = str_at(vol, "/persistentVolumeClaim/claimName") {
            m.push(("PersistentVolumeClaim".into(), n.into()));
        }
        if let Some(n) = str_at(vol, "/configMap/name") {
            m.push(("ConfigMap".into(), n.into()));
        }
        for p in
            ["/secret/secretName", "/cloudInitNoCloud/secretRef/name", "/cloudInitNoCloud/networkDataSecretRef/name", "/cloudInitConfigDrive/secretRef/name"]
        {
            if let Some(n) = str_at(vol, p) {
                m.push(("Secret".into(), n.into()));
            }
        }
    }
    for (p, kind) in [("/spec/instancetype", "VirtualMachineInstancetype"), ("/spec/preference", "VirtualMachinePreference")] {
        if let Some(n) = str_at(v, &format!("{p}/name")) {
            let k = str_at(v, &format!("{p}/kind")).unwrap_or(kind);
            if !k.starts_with("VirtualMachineCluster") {
                m.push((k.into(), n.into()));
            }
        }
    }
    // Services selecting the VM's pods, and Routes to those Services.
    let tmpl = v.pointer("/spec/template/metadata/labels").and_then(Value::as_object);
    for s in objects.iter().filter(|o| o.kind == "Service" && o.namespace == vm.namespace) {
        let sel = s.value.pointer("/spec/selector").and_then(Value::as_object);
        if let (Some(sel), Some(t)) = (sel, tmpl) {
            if !sel.is_empty() && sel.iter().all(|(k, val)| t.get(k) == Some(val)) {
                m.push(("Service".into(), s.name.clone()));
                for r in objects.iter().filter(|o| o.kind == "Route" && o.namespace == vm.namespace && str_at(&o.value, "/spec/to/name") == Some(&s.name)) {
                    m.push(("Route".into(), r.name.clone()));
                }
            }
        }
    }
    m
}

/// Label keys that say something other than which application a resource belongs to.
fn is_system_label(key: &str) -> bool {
    [
        "kubevirt.io/",
        "vm.kubevirt.io/",
        "instancetype.kubevirt.io/",
        "cdi.kubevirt.io/",
        "argocd.argoproj.io/",
        "apps.open-cluster-management.io/",
        "app.kubernetes.io/managed-by",
        "app.kubernetes.io/version",
        "app.kubernetes.io/component",
        "pod-template-hash",
    ]
    .iter()
    .any(|p| key.starts_with(p))
}

/// Keys users label applications with, most common first: the tie-breaker between equally shared labels.
const USUAL_KEYS: &[&str] = &["app", "app.kubernetes.io/part-of", "app.kubernetes.io/name"];

/// The application label of a VirtualMachine: the (key, value) among its own labels that most of its
/// resources (`members`) also carry; ties go to the usual keys, then alphabetically. With an explicit key,
/// that key. None: the VM has no label that could be one. Pure.
pub fn app_label_of(vm: &Object, members: &[&Object], explicit: Option<&str>) -> Option<(String, String)> {
    if let Some(k) = explicit {
        return vm.label(k).map(|v| (k.to_string(), v.to_string()));
    }
    let labels = vm.value.pointer("/metadata/labels").and_then(Value::as_object)?;
    let rank = |k: &str| USUAL_KEYS.iter().position(|u| *u == k).unwrap_or(USUAL_KEYS.len());
    labels.iter().filter(|(k, _)| !is_system_label(k)).filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).max_by(|(ka, va), (kb, vb)| {
        let share = |k: &str, v: &str| members.iter().filter(|m| m.label(k) == Some(v)).count();
        share(ka, va).cmp(&share(kb, vb)).then(rank(kb).cmp(&rank(ka))).then(kb.cmp(ka))
    })
}

/// A VirtualMachine, its application label (if it has one) and its resources.
type App<'a> = (&'a Object, Option<(String, String)>, Vec<&'a Object>);

/// The application label of each VirtualMachine (with its resources), as `app_label_of` finds it.
fn app_labels<'a>(objects: &'a [Object], o: &Options) -> Vec<App<'a>> {
    objects
        .iter()
        .filter(|x| is_vm(x))
        .map(|vm| {
            let members: BTreeSet<(String, String)> = vm_members(vm, objects).into_iter().collect();
            let objs: Vec<&Object> = objects.iter().filter(|x| x.namespace == vm.namespace && members.contains(&(x.kind.clone(), x.name.clone()))).collect();
            (vm, app_label_of(vm, &objs, o.app_label.as_deref()), objs)
        })
        .collect()
}

fn discovered_labels(objects: &[Object], o: &Options, out: &mut Vec<Finding>) {
    for (vm, label, members) in app_labels(objects, o) {
        let Some((key, value)) = label else {
            let key = o.app_label.as_deref().unwrap_or("app");
            out.push(finding(
                "DR001",
                vm,
                vm.line_of("metadata"),
                format!("VirtualMachine {} has no `{key}` label: a discovered application is selected by a common label on all its resources", vm.name),
                &format!(
                    "add metadata.labels.{key}: <application> to the VirtualMachine and to its DataVolumes, PVCs, Services, Routes, Secrets and ConfigMaps"
                ),
            ));
            continue;
        };
        let value = value.as_str();
        for t in arr(&vm.value, "/spec/dataVolumeTemplates") {
            let tl = t.pointer("/metadata/labels").and_then(|l| l.get(key.as_str())).and_then(Value::as_str);
            if tl != Some(value) {
                let n = str_at(t, "/metadata/name").unwrap_or("?");
                out.push(finding(
                    "DR001",
                    vm,
                    vm.line_of("dataVolumeTemplates"),
                    format!("dataVolumeTemplate {n} of VirtualMachine {} does not carry `{key}: {value}`: the DataVolume and PVC it creates are left out of the application", vm.name),
                    &format!("add metadata.labels.{key}: {value} to the dataVolumeTemplate"),
                ));
            }
        }
        for obj in members {
            if obj.label(&key) != Some(value) {
                out.push(finding(
                    "DR001",
                    obj,
                    obj.line_of("metadata"),
                    format!(
                        "{} belongs to VirtualMachine {} but is not labelled `{key}: {value}` ({}): it would not be protected with the VM",
                        obj.id(),
                        vm.name,
                        obj.label(&key).map_or(format!("it has no `{key}` label"), |v| format!("it has `{key}: {v}`"))
                    ),
                    &format!("add metadata.labels.{key}: {value}"),
                ));
            }
        }
    }
}

fn vmi_pod_labels(objects: &[Object], o: &Options, out: &mut Vec<Finding>) {
    let found = app_labels(objects, o);
    // the application label keys in use in each namespace; with no VM to learn from there, the explicit
    // key or the usual ones
    let in_use: BTreeSet<(String, String)> = found.iter().filter_map(|(vm, l, _)| l.as_ref().map(|(k, _)| (vm.namespace.clone(), k.clone()))).collect();
    let fallback: Vec<String> = o.app_label.clone().map(|k| vec![k]).unwrap_or_else(|| USUAL_KEYS.iter().map(|k| k.to_string()).collect());
    for x in objects.iter().filter(|x| matches!(x.kind.as_str(), "VirtualMachineInstance" | "Pod")) {
        let mut keys: Vec<String> = in_use.iter().filter(|(ns, _)| *ns == x.namespace).map(|(_, k)| k.clone()).collect();
        if keys.is_empty() {
            keys = fallback.clone();
        }
        if let Some((key, v)) = keys.iter().find_map(|k| x.label(k).map(|v| (k.clone(), v.to_string()))) {
            out.push(finding(
                "DR002",
                x,
                x.line_of("labels"),
                format!("{} carries the application label `{key}: {v}`; VMIs and pods are created and managed by OpenShift Virtualization", x.id()),
                "remove the label from the VMI/pod; label the VirtualMachine instead",
            ));
        }
    }
    for (vm, label, _) in &found {
        let Some((key, _)) = label else { continue };
        if let Some(v) = vm.value.pointer("/spec/template/metadata/labels").and_then(|l| l.get(key.as_str())).and_then(Value::as_str) {
            out.push(finding(
                "DR003",
                vm,
                vm.line_of("template"),
                format!("VirtualMachine {} puts `{key}: {v}` in spec.template.metadata.labels, which propagates to its VMI and virt-launcher pod", vm.name),
                &format!("use another label key in spec.template for Services; keep `{key}` on the VirtualMachine's own metadata"),
            ));
        }
    }
}

fn gitops_datavolumes(objects: &[Object], out: &mut Vec<Finding>) {
    for x in objects {
        if is_vm(x) && x.value.pointer("/spec/dataVolumeTemplates").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
            out.push(finding(
                "DR010",
                x,
                x.line_of("dataVolumeTemplates"),
                format!("VirtualMachine {} uses dataVolumeTemplates in a GitOps-managed application: the PVCs they create are not in Git", x.name),
                "declare the PVC in Git (with a volume populator / the import method) and reference it with persistentVolumeClaim",
            ));
        }
        if x.kind == "DataVolume" {
            out.push(finding(
                "DR010",
                x,
                x.line_of("spec"),
                format!("{} is a standalone DataVolume in a GitOps-managed application: it creates its PVC implicitly", x.id()),
                "declare the PVC in Git with a volume populator (the import method) instead of a DataVolume",
            ));
        }
    }
}

/// (where, source) of every DataVolume spec: standalone DataVolumes and VM dataVolumeTemplates.
fn dv_specs(objects: &[Object]) -> Vec<(&Object, String, &Value)> {
    let mut v = vec![];
    for x in objects {
        if x.kind == "DataVolume" {
            if let Some(s) = x.value.get("spec") {
                v.push((x, format!("DataVolume {}", x.name), s));
            }
        }
        if is_vm(x) {
            for t in arr(&x.value, "/spec/dataVolumeTemplates") {
                if let Some(s) = t.get("spec") {
                    v.push((x, format!("dataVolumeTemplate {} of VirtualMachine {}", str_at(t, "/metadata/name").unwrap_or("?"), x.name), s));
                }
            }
        }
    }
    v
}

fn cloned_pvcs(objects: &[Object], out: &mut Vec<Finding>) {
    let fix = "create the disk with the import method (registry or http source) instead of cloning, or use a replication class that flattens cloned images";
    for x in objects.iter().filter(|x| x.kind == "PersistentVolumeClaim") {
        for key in ["dataSource", "dataSourceRef"] {
            if str_at(&x.value, &format!("/spec/{key}/kind")) == Some("PersistentVolumeClaim") {
                let src = str_at(&x.value, &format!("/spec/{key}/name")).unwrap_or("?");
                out.push(finding("DR020", x, x.line_of(key), format!("{} is cloned from PVC {src} ({key}): Regional-DR cannot protect it", x.id()), fix));
            }
        }
    }
    for (x, what, spec) in dv_specs(objects) {
        if let Some(src) = spec.pointer("/source/pvc") {
            let n = str_at(src, "/name").unwrap_or("?");
            out.push(finding("DR020", x, x.line_of("pvc"), format!("{what} clones PVC {n}: Regional-DR cannot protect cloned PVCs"), fix));
        }
        if str_at(spec, "/sourceRef/kind") == Some("DataSource") {
            let n = str_at(spec, "/sourceRef/name").unwrap_or("?");
            out.push(finding(
                "DR020",
                x,
                x.line_of("sourceRef"),
                format!("{what} clones from DataSource {n} (a golden PVC or snapshot): Regional-DR cannot protect cloned PVCs"),
                fix,
            ));
        }
    }
}

/// Is an image reference on a floating tag (`latest`, or no tag and no digest)?
pub fn floating(image: &str) -> bool {
    let img = image.strip_prefix("docker://").unwrap_or(image);
    if img.contains('@') {
        return false;
    }
    let last = img.rsplit('/').next().unwrap_or(img);
    match last.rsplit_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

fn images(objects: &[Object], out: &mut Vec<Finding>) {
    for (x, what, spec) in dv_specs(objects) {
        if let Some(reg) = spec.pointer("/source/registry") {
            if str_at(reg, "/pullMethod") != Some("node") {
                out.push(finding(
                    "DR030",
                    x,
                    x.line_of("registry"),
                    format!("{what} imports from a registry without pullMethod: node"),
                    "set source.registry.pullMethod: node so the import uses the cluster's pull secret on the node",
                ));
            }
            if let Some(url) = str_at(reg, "/url") {
                if floating(url) {
                    out.push(finding(
                        "DR031",
                        x,
                        x.line_of("url"),
                        format!("{what} imports {url}, a floating tag"),
                        "pin a version tag or a digest (@sha256:...)",
                    ));
                }
            }
        }
    }
    for vm in objects.iter().filter(|x| is_vm(x)) {
        for vol in arr(&vm.value, "/spec/template/spec/volumes") {
            if let Some(img) = str_at(vol, "/containerDisk/image") {
                if floating(img) {
                    out.push(finding(
                        "DR031",
                        vm,
                        vm.line_of("image"),
                        format!("VirtualMachine {} boots containerDisk {img}, a floating tag", vm.name),
                        "pin a version tag or a digest (@sha256:...)",
                    ));
                }
            }
        }
    }
}

fn multi_disk(objects: &[Object], out: &mut Vec<Finding>) {
    for vm in objects.iter().filter(|x| is_vm(x)) {
        let disks: Vec<String> = arr(&vm.value, "/spec/template/spec/volumes")
            .filter(|v| v.get("dataVolume").is_some() || v.get("persistentVolumeClaim").is_some())
            .filter_map(|v| str_at(v, "/name").map(String::from))
            .collect();
        if disks.len() > 1 {
            out.push(finding(
                "DR040",
                vm,
                vm.line_of("volumes"),
                format!(
                    "VirtualMachine {} has {} persistent disks ({}): Regional-DR replicates each at a slightly different point in time",
                    vm.name,
                    disks.len(),
                    disks.join(", ")
                ),
                "snapshot the VM's disks in the same round (one schedule for all its PVCs: measured in the dr-drill lab, 3 disks 0.02-0.91 s apart after a failover; each on its own, 2.5-3.8 s apart), make the application tolerate disks from different points in time, use one disk, or use Metro-DR",
            ));
        }
    }
}

/// Ramen's scheduling interval: `<n>m`, `<n>h` or `<n>d`.
pub fn parse_interval(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = n.parse().ok()?;
    Some(Duration::from_secs(
        n * match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return None,
        },
    ))
}

fn drpolicies(objects: &[Object], o: &Options, out: &mut Vec<Finding>) {
    for p in objects.iter().filter(|x| x.kind == "DRPolicy") {
        let iv = str_at(&p.value, "/spec/schedulingInterval").unwrap_or("");
        if let (Some(rpo), Some(d)) = (o.rpo, parse_interval(iv)) {
            if d > rpo {
                out.push(finding(
                    "DR050",
                    p,
                    p.line_of("schedulingInterval"),
                    format!("DRPolicy {} replicates every {iv}, more than the declared RPO of {}", p.name, crate::units::Dur(rpo)),
                    "lower spec.schedulingInterval to the RPO or below",
                ));
            }
        }
        // A Metro-DR policy has no scheduling interval (synchronous replication).
        if iv.is_empty() {
            if let Some(rtt) = o.rtt {
                if rtt > Duration::from_millis(10) {
                    out.push(finding(
                        "DR060",
                        p,
                        p.line_of("spec"),
                        format!(
                            "DRPolicy {} is Metro-DR (synchronous) but the measured inter-site round trip is {:.1} ms (10 ms at most)",
                            p.name,
                            rtt.as_secs_f64() * 1e3
                        ),
                        "use Regional-DR between these sites, or sites at most 10 ms apart",
                    ));
                }
            }
        }
    }
}

/// Metro-DR on one Ceph cluster (Rook's CephCluster, its CephBlockPools): without stretch mode a partition
/// between the data sites while the arbiter sees both is not survivable (the lab's negative control shows
/// it), and pools must keep 2 replicas in each data zone (size 4, min_size 2). Pools are those the
/// StorageClasses name, or every pool when no StorageClass is there.
fn stretch_mode(objects: &[Object], out: &mut Vec<Finding>) {
    const FIX: &str = "set spec.mon.stretchCluster (two data zones and one arbiter zone) with spec.mon.count 5, as Rook documents for stretch clusters";
    for c in objects.iter().filter(|x| x.kind == "CephCluster") {
        let Some(sc) = c.value.pointer("/spec/mon/stretchCluster") else {
            out.push(finding(
                "DR061",
                c,
                c.line_of("mon"),
                format!("CephCluster {} is not a stretch cluster (no spec.mon.stretchCluster): Metro-DR over it does not survive a partition between the data sites", c.name),
                FIX,
            ));
            continue;
        };
        let zones: Vec<&Value> = arr(sc, "/zones").collect();
        let arbiters = zones.iter().filter(|z| z.get("arbiter").and_then(Value::as_bool) == Some(true)).count();
        if zones.len() != 3 || arbiters != 1 {
            out.push(finding(
                "DR061",
                c,
                c.line_of("stretchCluster"),
                format!(
                    "CephCluster {} stretches over {} zones with {arbiters} arbiter(s): stretch mode needs two data zones and one arbiter",
                    c.name,
                    zones.len()
                ),
                FIX,
            ));
        }
        let mons = c.value.pointer("/spec/mon/count").and_then(Value::as_u64);
        if mons != Some(5) {
            out.push(finding(
                "DR061",
                c,
                c.line_of("count"),
                format!(
                    "CephCluster {} runs {} monitors: stretch mode needs 5 (two per data zone, the tiebreaker in the arbiter zone)",
                    c.name,
                    mons.map_or("an unset number of".into(), |m| m.to_string())
                ),
                FIX,
            ));
        }
    }
    let classes: Vec<&str> = objects.iter().filter(|x| x.kind == "StorageClass").filter_map(|x| str_at(&x.value, "/parameters/pool")).collect();
    for p in objects.iter().filter(|x| x.kind == "CephBlockPool" && (classes.is_empty() || classes.contains(&x.name.as_str()))) {
        let size = p.value.pointer("/spec/replicated/size").and_then(Value::as_u64);
        let per = p.value.pointer("/spec/replicated/replicasPerFailureDomain").and_then(Value::as_u64);
        if size != Some(4) || per != Some(2) {
            out.push(finding(
                "DR061",
                p,
                p.line_of("replicated"),
                format!(
                    "CephBlockPool {} keeps {} replicas, {} per failure domain: Metro-DR in stretch mode needs 4, 2 per data zone (min_size 2)",
                    p.name,
                    size.map_or("?".into(), |x| x.to_string()),
                    per.map_or("?".into(), |x| x.to_string())
                ),
                "set spec.replicated.size 4 and spec.replicated.replicasPerFailureDomain 2, failureDomain the zone",
            ));
        }
    }
}

/// Runs every rule. Findings come out ordered by file, line and rule.
pub fn check(objects: &[Object], has_kustomization: bool, o: &Options) -> Vec<Finding> {
    let managed = match o.mode {
        AppMode::Managed => true,
        AppMode::Discovered => false,
        AppMode::Auto => looks_managed(objects, has_kustomization),
    };
    let mut out = vec![];
    if managed {
        gitops_datavolumes(objects, &mut out);
    } else {
        discovered_labels(objects, o, &mut out);
    }
    vmi_pod_labels(objects, o, &mut out);
    if o.dr == DrKind::Regional {
        if !o.flatten {
            cloned_pvcs(objects, &mut out);
        }
        multi_disk(objects, &mut out);
    }
    if o.dr == DrKind::Metro {
        stretch_mode(objects, &mut out);
    }
    images(objects, &mut out);
    drpolicies(objects, o, &mut out);
    out.sort_by(|a, b| (a.file.as_str(), a.line, a.rule).cmp(&(b.file.as_str(), b.line, b.rule)));
    out.dedup();
    out
}
