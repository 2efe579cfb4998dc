//! The drill's VM on Kubernetes: a KubeVirt VirtualMachine booting the probe from a kernel-boot container
//! image (FROM scratch: the kernel and the probe's initramfs, built by the harness), its data disk a blank
//! block-mode PVC on the mirrored storage class (referenced as a PVC, not through a DataVolume: a
//! DataVolume makes its PVC implicitly, which the DR guidance warns fits protection badly, and the PVC is
//! what replicates), and a ConfigMap with the probe's settings. Every resource of the application carries
//! the common label the guidance asks for discovered applications (VirtualMachine, PersistentVolumeClaim,
//! ConfigMap); the VM's template does not, so the VMI and its virt-launcher pod never do. The probe speaks over the serial console (`drprobe.port=ttyS0`),
//! which reaches the harness through KubeVirt's console subresource: no guest networking, the harness
//! stays the witness. Pure builders and conditions; the I/O is elsewhere.

use serde_json::{json, Value};

/// Where the kernel and initramfs are inside the kernel-boot image.
pub const KERNEL_PATH: &str = "/boot/vmlinuz";
pub const INITRD_PATH: &str = "/boot/initramfs.img";
/// The websocket subprotocol of KubeVirt's console: one binary channel, the serial port's bytes.
pub const CONSOLE_PROTOCOL: &str = "plain.kubevirt.io";

/// Everything that names the VM's resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmManifest {
    pub name: String,
    pub namespace: String,
    /// Key of the application's common label; its value is `app`.
    pub app_label: String,
    pub app: String,
    pub image: String,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    pub storage_class: String,
    /// The DataVolume (and PVC) holding the disk.
    pub disk: String,
    /// The probe's kernel arguments for the next boot (`kernel_args`).
    pub kernel_args: String,
}

/// The probe's kernel arguments: its channel is the serial console, and it writes nothing before the
/// harness's "go" (a console drops what nobody reads); `mode` is the probe's mode arguments
/// (`drprobe.mode=write`, ...).
pub fn kernel_args(mode: &str, rate: u32, scan_limit: u64) -> String {
    format!("console=tty0 quiet panic=-1 drprobe.port=ttyS0 drprobe.wait=1 {mode} drprobe.rate={rate} drprobe.limit={scan_limit}")
}

impl VmManifest {
    pub fn disk_name(&self) -> String {
        self.disk.clone()
    }

    fn labels(&self) -> Value {
        json!({ self.app_label.clone(): self.app })
    }

    /// The disk: a blank block-mode PVC on the mirrored storage class.
    pub fn pvc(&self) -> Value {
        pvc_manifest(&self.namespace, &self.disk, &self.storage_class, self.disk_bytes, (&self.app_label, &self.app))
    }

    /// The probe's settings, kept with the application (restored with it by Ramen's kube object protection).
    pub fn config_map(&self) -> Value {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": format!("{}-probe", self.name), "namespace": self.namespace, "labels": self.labels() },
            "data": { "kernelArgs": self.kernel_args, "image": self.image }
        })
    }

    /// The VirtualMachine, halted (`runStrategy: Manual`: started and stopped through its subresources,
    /// never restarted behind the harness's back).
    pub fn virtual_machine(&self) -> Value {
        let mem = format!("{}Mi", self.memory_bytes >> 20);
        json!({
            "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": { "name": self.name, "namespace": self.namespace, "labels": self.labels() },
            "spec": {
                "runStrategy": "Manual",
                "template": {
                    // the template's labels go to the VMI and its pod: never the application's label
                    "metadata": { "labels": { "kubevirt.io/domain": self.name } },
                    "spec": {
                        "terminationGracePeriodSeconds": 30,
                        "domain": {
                            "cpu": { "cores": 1 },
                            "memory": { "guest": mem },
                            "resources": { "requests": { "memory": mem } },
                            "firmware": { "kernelBoot": {
                                "kernelArgs": self.kernel_args,
                                "container": { "image": self.image, "imagePullPolicy": "IfNotPresent", "kernelPath": KERNEL_PATH, "initrdPath": INITRD_PATH }
                            } },
                            "devices": {
                                "autoattachGraphicsDevice": false,
                                "autoattachSerialConsole": true,
                                "disks": [{ "name": "data", "disk": { "bus": "virtio" } }]
                            }
                        },
                        "volumes": [{ "name": "data", "persistentVolumeClaim": { "claimName": self.disk_name() } }]
                    }
                }
            }
        })
    }

    /// The application's resources in the order they are created.
    pub fn resources(&self) -> Vec<Value> {
        vec![self.config_map(), self.pvc(), self.virtual_machine()]
    }

    /// Path of the VMI's serial console subresource.
    pub fn console_path(&self) -> String {
        format!("/apis/subresources.kubevirt.io/v1/namespaces/{}/virtualmachineinstances/{}/console", self.namespace, self.name)
    }

    /// Path of the VM's `start` or `stop` subresource.
    pub fn action_path(&self, action: &str) -> String {
        format!("/apis/subresources.kubevirt.io/v1/namespaces/{}/virtualmachines/{}/{action}", self.namespace, self.name)
    }
}

/// The value of the application's common label for `vm`'s resources. Pure.
pub fn app_of(vm: &str) -> String {
    format!("dr-drill-{vm}")
}

/// A blank block-mode PVC labelled as part of the application. Pure.
pub fn pvc_manifest(ns: &str, name: &str, storage_class: &str, bytes: u64, label: (&str, &str)) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": { "name": name, "namespace": ns, "labels": { label.0: label.1 } },
        "spec": {
            "storageClassName": storage_class,
            "volumeMode": "Block",
            "accessModes": ["ReadWriteOnce"],
            "resources": { "requests": { "storage": bytes.to_string() } }
        }
    })
}

/// Is the VMI running (scheduled, its domain up)? Pure.
pub fn vmi_running(vmi: Option<&Value>) -> bool {
    vmi.and_then(|v| v.pointer("/status/phase")).and_then(Value::as_str) == Some("Running")
}

/// Has the VMI ended (the guest powered off, or it was stopped)? A VMI that is gone has ended. Pure.
pub fn vmi_ended(vmi: Option<&Value>) -> bool {
    match vmi.and_then(|v| v.pointer("/status/phase")).and_then(Value::as_str) {
        None => vmi.is_none(),
        Some(p) => matches!(p, "Succeeded" | "Failed"),
    }
}

/// Is the PVC bound to a volume? Pure.
pub fn pvc_bound(pvc: Option<&Value>) -> bool {
    pvc.and_then(|v| v.pointer("/status/phase")).and_then(Value::as_str) == Some("Bound")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm() -> VmManifest {
        VmManifest {
            name: "vm0".into(),
            namespace: "dr-drill".into(),
            app_label: "app.kubernetes.io/part-of".into(),
            app: "drill-vm0".into(),
            image: "localhost/dr-drill/probe-kernel:v1".into(),
            memory_bytes: 128 << 20,
            disk_bytes: 64 << 20,
            storage_class: "rbd-mirrored".into(),
            disk: "vm0-disk".into(),
            kernel_args: kernel_args("drprobe.mode=write", 50, 16383),
        }
    }

    #[test]
    fn every_application_resource_is_labelled_and_the_template_is_not() {
        let v = vm();
        for r in v.resources() {
            assert_eq!(r["metadata"]["labels"]["app.kubernetes.io/part-of"], "drill-vm0", "{r}");
        }
        let t = &v.virtual_machine()["spec"]["template"]["metadata"]["labels"];
        assert!(t.get("app.kubernetes.io/part-of").is_none(), "{t}");
        let pvc = v.pvc();
        assert_eq!(pvc["spec"]["volumeMode"], "Block");
        assert_eq!(pvc["spec"]["storageClassName"], "rbd-mirrored");
        assert_eq!(v.virtual_machine()["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"], "vm0-disk");
        assert_eq!(v.virtual_machine()["spec"]["runStrategy"], "Manual");
        assert!(v.virtual_machine().to_string().contains("drprobe.port=ttyS0"));
    }

    /// The lint (the guidance's checks) finds nothing wrong with the VM's own resources.
    #[test]
    fn the_vm_passes_the_lint() {
        let yaml: String = vm().resources().iter().map(|r| format!("---\n{}", serde_saphyr::to_string(r).unwrap())).collect();
        let objs = crate::lint::parse_stream("vm.yaml", &yaml).unwrap();
        assert_eq!(objs.len(), 3);
        let findings =
            crate::lint::rules::check(&objs, false, &crate::lint::rules::Options { mode: crate::lint::rules::AppMode::Discovered, ..Default::default() });
        assert!(findings.is_empty(), "{findings:?}");
    }

    #[test]
    fn vmi_conditions() {
        let y = |s: &str| -> Value { serde_saphyr::from_str(s).unwrap() };
        assert!(vmi_running(Some(&y("status: {phase: Running}"))));
        assert!(!vmi_running(Some(&y("status: {phase: Scheduling}"))));
        assert!(!vmi_running(None));
        assert!(vmi_ended(None));
        assert!(vmi_ended(Some(&y("status: {phase: Succeeded}"))));
        assert!(!vmi_ended(Some(&y("status: {phase: Running}"))));
        assert!(pvc_bound(Some(&y("status: {phase: Bound}"))));
        assert!(!pvc_bound(Some(&y("status: {phase: Pending}"))));
    }
}
