//! The guest's initramfs: an uncompressed newc cpio archive with the probe as `/init`, the virtio modules
//! and busybox (for a person debugging a guest). Built by the harness, no external tool.

use std::path::Path;

#[derive(Default)]
pub struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let namesize = name.len() + 1;
        let fields = [self.ino, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, rdev.0, rdev.1, namesize as u32, 0];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }
    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }
    pub fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[], (0, 0));
    }
    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100000 | mode, data, (0, 0));
    }
    pub fn char_dev(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020600, &[], (major, minor));
    }
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        while self.out.len() % 512 != 0 {
            self.out.push(0);
        }
        self.out
    }
}

pub const MODULES: [&str; 7] = ["virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "virtio_blk", "virtio_console"];

/// Builds the archive from the probe binary, the kernel modules directory and (optionally) busybox.
pub fn build(probe: &Path, modules: &Path, busybox: Option<&Path>) -> std::io::Result<Vec<u8>> {
    let mut c = Cpio::default();
    for d in ["dev", "proc", "sys", "bin", "lib", "lib/modules"] {
        c.dir(d);
    }
    c.char_dev("dev/console", 5, 1);
    c.file("init", 0o755, &std::fs::read(probe)?);
    for m in MODULES {
        c.file(&format!("lib/modules/{m}.ko"), 0o644, &std::fs::read(modules.join(format!("{m}.ko")))?);
    }
    if let Some(bb) = busybox {
        c.file("bin/busybox", 0o755, &std::fs::read(bb)?);
    }
    Ok(c.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_layout() {
        let mut c = Cpio::default();
        c.file("init", 0o755, b"abc");
        let a = c.finish();
        assert_eq!(&a[..6], b"070701");
        // mode field (second) and file size (seventh)
        assert_eq!(&a[14..22], b"000081ed");
        assert_eq!(&a[54..62], b"00000003");
        let name_at = 110;
        assert_eq!(&a[name_at..name_at + 5], b"init\0");
        // header 110 + "init\0" 5 = 115, padded to 116; data at 116
        assert_eq!(&a[116..119], b"abc");
        assert!(a.windows(10).any(|w| w == b"TRAILER!!!"));
        assert_eq!(a.len() % 512, 0);
    }
}
