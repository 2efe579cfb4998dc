//! A golden image, as CDI clones VM disks from one: the pattern its blocks hold, where it sits on a disk
//! cloned from it, and the judgement of what a site reads back there. Pure.
//!
//! The pattern sits right after the part of the disk the guest sees (the guest is given only its disk's
//! size), so no guest write can ever touch it: every golden block must read back as written on every
//! site that holds the clone. On Ceph those blocks are never copied up into the clone: a site reads them
//! through the clone's parent, which is exactly what a mirrored clone can lose (Ceph tracker 61891).

use serde::Serialize;

pub const BLOCK: u64 = 4096;
pub const MAGIC: &[u8; 8] = b"DRGOLDEN";

/// Where a golden image's pattern sits on the image (and so on every clone of it), in 4 KiB blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GoldenLayout {
    pub first: u64,
    pub blocks: u64,
}

impl GoldenLayout {
    /// The pattern right after the guest's disk of `guest_bytes`, `golden_bytes` long (whole blocks).
    pub fn after(guest_bytes: u64, golden_bytes: u64) -> GoldenLayout {
        GoldenLayout { first: guest_bytes.div_ceil(BLOCK), blocks: golden_bytes / BLOCK }
    }
    /// The image's size: the guest's disk and the pattern after it.
    pub fn image_bytes(&self) -> u64 {
        (self.first + self.blocks) * BLOCK
    }
    /// The pattern's offset and length in the image, bytes.
    pub fn span(&self) -> (u64, u64) {
        (self.first * BLOCK, self.blocks * BLOCK)
    }
    /// The pattern's span as written: what an intact site reads there.
    pub fn span_bytes(&self) -> Vec<u8> {
        (self.first..self.first + self.blocks).flat_map(pattern).collect()
    }
    /// The golden image's whole content (zeros before the pattern, sparse when imported).
    pub fn image(&self) -> Vec<u8> {
        let mut out = vec![0u8; (self.first * BLOCK) as usize];
        out.extend(self.span_bytes());
        out
    }
}

/// Golden block `block`: the magic, its own index, then a stream seeded by the index (every block differs,
/// none is zeros, a block misplaced or damaged is told from a good one).
pub fn pattern(block: u64) -> [u8; BLOCK as usize] {
    let mut out = [0u8; BLOCK as usize];
    out[..8].copy_from_slice(MAGIC);
    out[8..16].copy_from_slice(&block.to_le_bytes());
    dr_probe::splitmix_fill(block, &mut out[16..]);
    out
}

/// What a golden block read back as, when it was not what was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Damage {
    /// All zeros: the site read nothing there (the clone's parent data missing).
    Zeros,
    /// Another golden block (misplaced).
    Misplaced,
    /// Anything else.
    Other,
    /// The read ended before the block (the image shorter than the layout).
    Missing,
}

/// The golden blocks as one site read them back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GoldenCheck {
    pub site: String,
    pub image: String,
    pub layout: GoldenLayout,
    pub blocks_intact: u64,
    /// Damaged blocks as inclusive ranges of one kind of damage, ascending.
    pub damaged: Vec<(u64, u64, Damage)>,
}

impl GoldenCheck {
    pub fn intact(&self) -> bool {
        self.damaged.is_empty() && self.blocks_intact == self.layout.blocks
    }
    pub fn damaged_blocks(&self) -> u64 {
        self.damaged.iter().map(|(a, b, _)| b - a + 1).sum()
    }
    /// One line: what was read where, and what was wrong.
    pub fn describe(&self) -> String {
        let (first, last) = (self.layout.first, self.layout.first + self.layout.blocks - 1);
        if self.intact() {
            return format!("{} golden blocks {first}..{last} of {} intact on site {}", self.layout.blocks, self.image, self.site);
        }
        let kinds: Vec<String> = self
            .damaged
            .iter()
            .take(4)
            .map(|(a, b, d)| {
                let what = match d {
                    Damage::Zeros => "zeros",
                    Damage::Misplaced => "another golden block",
                    Damage::Other => "other data",
                    Damage::Missing => "missing (the image ends before)",
                };
                if a == b {
                    format!("block {a} {what}")
                } else {
                    format!("blocks {a}..{b} {what}")
                }
            })
            .collect();
        let more = if self.damaged.len() > 4 { format!(" and {} more ranges", self.damaged.len() - 4) } else { String::new() };
        let zeros: u64 = self.damaged.iter().filter(|d| d.2 == Damage::Zeros).map(|(a, b, _)| b - a + 1).sum();
        let cause = if zeros == self.damaged_blocks() { ": the clone's data from its parent is missing there (the class of Ceph tracker 61891)" } else { "" };
        format!(
            "{} of {} golden blocks of {} damaged on site {} ({}{more}){cause}",
            self.damaged_blocks(),
            self.layout.blocks,
            self.image,
            self.site,
            kinds.join(", ")
        )
    }
}

/// Judges what `site` read back from the pattern's span of `image` (`read`, from the span's first byte).
pub fn judge(layout: GoldenLayout, site: &str, image: &str, read: &[u8]) -> GoldenCheck {
    let mut damaged: Vec<(u64, u64, Damage)> = vec![];
    let mut intact = 0;
    for i in 0..layout.blocks {
        let block = layout.first + i;
        let at = (i * BLOCK) as usize;
        let d = match read.get(at..at + BLOCK as usize) {
            None => Some(Damage::Missing),
            Some(got) if got == pattern(block) => None,
            Some(got) if got.iter().all(|b| *b == 0) => Some(Damage::Zeros),
            Some(got) if &got[..8] == MAGIC && got == pattern(u64::from_le_bytes(got[8..16].try_into().expect("8 bytes"))) => Some(Damage::Misplaced),
            Some(_) => Some(Damage::Other),
        };
        match d {
            None => intact += 1,
            Some(d) => match damaged.last_mut() {
                Some(last) if last.1 + 1 == block && last.2 == d => last.1 = block,
                _ => damaged.push((block, block, d)),
            },
        }
    }
    GoldenCheck { site: site.into(), image: image.into(), layout, blocks_intact: intact, damaged }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> GoldenLayout {
        GoldenLayout::after(64 << 20, 64 << 10)
    }

    #[test]
    fn the_pattern_sits_after_the_guests_disk() {
        let l = layout();
        assert_eq!((l.first, l.blocks), (16384, 16));
        assert_eq!(l.image_bytes(), (64 << 20) + (64 << 10));
        assert_eq!(l.span(), (64 << 20, 64 << 10));
        let img = l.image();
        assert_eq!(img.len() as u64, l.image_bytes());
        assert!(img[..(64 << 20)].iter().all(|b| *b == 0));
        assert_eq!(&img[(64 << 20)..(64 << 20) + 8], MAGIC);
    }

    #[test]
    fn every_block_differs_and_none_is_zeros() {
        let (a, b) = (pattern(7), pattern(8));
        assert_ne!(a[16..], b[16..]);
        assert!(a[16..].iter().any(|x| *x != 0));
    }

    #[test]
    fn an_intact_read_passes() {
        let l = layout();
        let (off, len) = l.span();
        let img = l.image();
        assert_eq!(img[off as usize..(off + len) as usize], l.span_bytes()[..]);
        let c = judge(l, "b", "vm0", &l.span_bytes());
        assert!(c.intact(), "{}", c.describe());
        assert_eq!(c.blocks_intact, 16);
        assert!(c.describe().contains("16 golden blocks 16384..16399 of vm0 intact on site b"), "{}", c.describe());
    }

    /// The negative controls: the parent's data missing (zeros), a block misplaced, one damaged, a short read.
    #[test]
    fn lost_parent_data_and_damage_are_named() {
        let l = layout();
        let (off, len) = l.span();
        let mut read = l.image()[off as usize..(off + len) as usize].to_vec();
        read[..4 * BLOCK as usize].fill(0);
        let c = judge(l, "b", "vm0", &read);
        assert!(!c.intact());
        assert_eq!(c.damaged, vec![(16384, 16387, Damage::Zeros)]);
        assert!(c.describe().contains("4 of 16 golden blocks of vm0 damaged on site b (blocks 16384..16387 zeros)"), "{}", c.describe());
        assert!(c.describe().contains("tracker 61891"), "{}", c.describe());

        let mut read = l.image()[off as usize..(off + len) as usize].to_vec();
        let b5 = pattern(16384 + 5);
        read[6 * BLOCK as usize..7 * BLOCK as usize].copy_from_slice(&b5);
        read[9 * BLOCK as usize + 100] ^= 1;
        let c = judge(l, "a", "vm0", &read[..14 * BLOCK as usize]);
        assert_eq!(c.damaged, vec![(16390, 16390, Damage::Misplaced), (16393, 16393, Damage::Other), (16398, 16399, Damage::Missing)]);
        assert_eq!(c.blocks_intact, 12);
        assert!(!c.describe().contains("61891"), "{}", c.describe());
    }
}
