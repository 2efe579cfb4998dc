//! The on-disk record format and the ack protocol of `dr-probe`, shared by the guest workload and the
//! harness's oracle. Pure code: no I/O here.
//!
//! A record is one 4 KiB block. Record `seq` (starting at 1) lives in block `seq` (block 0 is never written),
//! so a scan needs no index. Layout, little-endian:
//!
//! | bytes      | field                                                        |
//! |------------|--------------------------------------------------------------|
//! | 0..8       | magic `DRPROBE1`                                             |
//! | 8..12      | kind (1 data, 2 STOP)                                        |
//! | 16..24     | sequence number                                              |
//! | 24..40     | writer boot id (random per guest boot)                       |
//! | 40..48     | guest wall clock, ns since the Unix epoch                    |
//! | 48..56     | guest monotonic clock, ns                                    |
//! | 56..64     | hash of the previous record (0 for sequence 1)               |
//! | 64..72     | checksum of the payload                                      |
//! | 72..80     | hash of this record (header bytes 0..72 and the payload)     |
//! | 128..4096  | payload: a pattern derived from sequence and boot id         |

use std::fmt;

pub const BLOCK: usize = 4096;
pub const MAGIC: &[u8; 8] = b"DRPROBE1";
const PAYLOAD: std::ops::Range<usize> = 128..BLOCK;
/// Name of the virtio-serial port the probe talks on.
pub const PORT_NAME: &str = "dr.probe";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Data,
    Stop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub kind: Kind,
    pub seq: u64,
    pub boot: [u8; 16],
    pub wall_ns: u64,
    pub mono_ns: u64,
    pub prev_hash: u64,
}

/// What a block holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    /// Never written (all zero).
    Empty,
    /// A record whose checksums hold; `hash` is its own hash, for the chain check.
    Valid { record: Record, hash: u64 },
    /// Not zero and not a valid record.
    Corrupt(Corruption),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// No magic but not zero: overwritten by something else.
    Foreign,
    BadKind,
    BadPayload,
    BadHash,
    /// A valid record in the wrong block.
    Misplaced,
}

impl Corruption {
    pub fn as_str(self) -> &'static str {
        match self {
            Corruption::Foreign => "foreign-data",
            Corruption::BadKind => "bad-kind",
            Corruption::BadPayload => "bad-payload-checksum",
            Corruption::BadHash => "bad-record-hash",
            Corruption::Misplaced => "misplaced",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Foreign, Self::BadKind, Self::BadPayload, Self::BadHash, Self::Misplaced].into_iter().find(|c| c.as_str() == s)
    }
}

/// FNV-1a, 64 bit: small, dependency-free, and plenty to detect torn or flipped blocks.
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter() {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Fills `out` with the splitmix64 stream of `seed` (little-endian words): the probe's record payloads and
/// the harness's golden-image blocks.
pub fn splitmix_fill(seed: u64, out: &mut [u8]) {
    let mut s = seed ^ 0x9e37_79b9_7f4a_7c15;
    for chunk in out.chunks_mut(8) {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

fn fill_payload(seq: u64, boot: &[u8; 16], out: &mut [u8]) {
    // seeded by sequence and boot id: every record's payload differs
    splitmix_fill(seq ^ u64::from_le_bytes(boot[..8].try_into().unwrap()), out);
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Encodes `r` into `out` (one block) and returns the record's hash (the next record's `prev_hash`).
pub fn encode(r: &Record, out: &mut [u8]) -> u64 {
    assert_eq!(out.len(), BLOCK);
    out.fill(0);
    out[0..8].copy_from_slice(MAGIC);
    let kind: u32 = match r.kind {
        Kind::Data => 1,
        Kind::Stop => 2,
    };
    out[8..12].copy_from_slice(&kind.to_le_bytes());
    out[16..24].copy_from_slice(&r.seq.to_le_bytes());
    out[24..40].copy_from_slice(&r.boot);
    out[40..48].copy_from_slice(&r.wall_ns.to_le_bytes());
    out[48..56].copy_from_slice(&r.mono_ns.to_le_bytes());
    out[56..64].copy_from_slice(&r.prev_hash.to_le_bytes());
    fill_payload(r.seq, &r.boot, &mut out[PAYLOAD]);
    let psum = fnv1a(&[&out[PAYLOAD]]);
    out[64..72].copy_from_slice(&psum.to_le_bytes());
    let h = fnv1a(&[&out[0..72], &out[PAYLOAD]]);
    out[72..80].copy_from_slice(&h.to_le_bytes());
    h
}

/// Decodes the block found at block number `block`.
pub fn decode(block: u64, b: &[u8]) -> Block {
    assert_eq!(b.len(), BLOCK);
    if &b[0..8] != MAGIC {
        return if b.iter().all(|x| *x == 0) { Block::Empty } else { Block::Corrupt(Corruption::Foreign) };
    }
    let kind = match u32::from_le_bytes(b[8..12].try_into().unwrap()) {
        1 => Kind::Data,
        2 => Kind::Stop,
        _ => return Block::Corrupt(Corruption::BadKind),
    };
    let h = fnv1a(&[&b[0..72], &b[PAYLOAD]]);
    if h != u64_at(b, 72) {
        // Tell a damaged payload from a damaged header: the payload checksum covers the payload alone.
        return Block::Corrupt(if fnv1a(&[&b[PAYLOAD]]) != u64_at(b, 64) { Corruption::BadPayload } else { Corruption::BadHash });
    }
    let record =
        Record { kind, seq: u64_at(b, 16), boot: b[24..40].try_into().unwrap(), wall_ns: u64_at(b, 40), mono_ns: u64_at(b, 48), prev_hash: u64_at(b, 56) };
    let mut expect = [0u8; BLOCK - 128];
    fill_payload(record.seq, &record.boot, &mut expect);
    if expect[..] != b[PAYLOAD] {
        return Block::Corrupt(Corruption::BadPayload);
    }
    if record.seq != block {
        return Block::Corrupt(Corruption::Misplaced);
    }
    Block::Valid { record, hash: h }
}

/// The result of a verify scan, as the guest reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub blocks_scanned: u64,
    /// Maximal runs of valid records of one writer boot, as inclusive (first, last, boot tag), ascending.
    /// The boot tag is the first 8 bytes of the writer's boot id (see [`boot_tag`]).
    pub ranges: Vec<(u64, u64, u64)>,
    /// Blocks that hold neither zeros nor a valid record.
    pub corrupt: Vec<(u64, Corruption)>,
    /// Records whose `prev_hash` does not match the record before them.
    pub chain_breaks: Vec<u64>,
    /// Sequence of the STOP record, if any.
    pub stop: Option<u64>,
    /// Highest sequence such that 1..=it are all valid (0 if record 1 is missing).
    pub highest_contiguous: u64,
    /// Hash of record `highest_contiguous` (0 if none): where a resumed writer continues the chain.
    pub tail_hash: u64,
}

/// The tag of a boot id: its first 8 bytes, as the protocol's hex boot id's first 16 digits.
pub fn boot_tag(boot: &[u8; 16]) -> u64 {
    u64::from_be_bytes(boot[..8].try_into().unwrap())
}

/// The tag of a boot id given in hex (as in HELLO).
pub fn boot_tag_hex(hex: &str) -> Option<u64> {
    u64::from_str_radix(hex.get(..16)?, 16).ok()
}

impl ScanReport {
    /// The boot tag of the valid record `seq`, if the scan found one.
    pub fn boot_of(&self, seq: u64) -> Option<u64> {
        let i = self.ranges.partition_point(|r| r.1 < seq);
        self.ranges.get(i).filter(|r| r.0 <= seq).map(|r| r.2)
    }
    pub fn contains(&self, seq: u64) -> bool {
        self.boot_of(seq).is_some()
    }
    /// Gaps between valid records below the highest one: (first, last) missing sequence ranges.
    pub fn holes(&self) -> Vec<(u64, u64)> {
        let mut v = vec![];
        let mut expect = 1;
        for r in &self.ranges {
            if r.0 > expect {
                v.push((expect, r.0 - 1));
            }
            expect = r.1 + 1;
        }
        v
    }
    pub fn count(&self) -> u64 {
        self.ranges.iter().map(|r| r.1 - r.0 + 1).sum()
    }
}

/// Builds a scan report block by block, in ascending block order.
#[derive(Default)]
pub struct Scanner {
    report: ScanReport,
    prev: Option<(u64, u64)>, // (seq, hash) of the last valid record seen
    contiguous_open: bool,
}

impl Scanner {
    pub fn new() -> Self {
        Scanner { contiguous_open: true, ..Default::default() }
    }
    pub fn push(&mut self, block: u64, b: &Block) {
        self.report.blocks_scanned = self.report.blocks_scanned.max(block + 1);
        if block == 0 {
            // block 0 is never written: anything there is foreign (a record 0 included)
            if *b != Block::Empty {
                self.report.corrupt.push((0, Corruption::Foreign));
            }
            return;
        }
        match b {
            Block::Empty => self.contiguous_open = false,
            Block::Corrupt(c) => {
                self.report.corrupt.push((block, *c));
                self.contiguous_open = false;
            }
            Block::Valid { record, hash } => {
                let seq = record.seq;
                match self.prev {
                    Some((p, ph)) if p + 1 == seq => {
                        if record.prev_hash != ph {
                            self.report.chain_breaks.push(seq);
                        }
                        let tag = boot_tag(&record.boot);
                        let last = self.report.ranges.last_mut().unwrap();
                        if last.2 == tag {
                            last.1 = seq;
                        } else {
                            self.report.ranges.push((seq, seq, tag));
                        }
                    }
                    _ => {
                        if seq == 1 && record.prev_hash != 0 {
                            self.report.chain_breaks.push(seq);
                        }
                        self.report.ranges.push((seq, seq, boot_tag(&record.boot)));
                    }
                }
                if self.contiguous_open && seq == self.report.highest_contiguous + 1 {
                    self.report.highest_contiguous = seq;
                    self.report.tail_hash = *hash;
                } else {
                    self.contiguous_open = false;
                }
                if record.kind == Kind::Stop {
                    self.report.stop = Some(seq);
                }
                self.prev = Some((seq, *hash));
            }
        }
    }
    pub fn finish(self) -> ScanReport {
        self.report
    }
}

/// One line of the probe's protocol, guest to host. Each is a single text line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// The probe is up: mode, boot id (hex), disk size in blocks.
    Hello {
        mode: String,
        boot: String,
        blocks: u64,
    },
    /// Record `seq` is durable on the disk.
    /// A durable record: its sequence, its wall time, and how long its write took to become durable
    /// (pwrite + fdatasync), microseconds.
    Ack {
        seq: u64,
        wall_ns: u64,
        lat_us: u64,
    },
    /// Scan summary; `Range`, `Corrupt` and `Break` lines follow, then `ScanEnd`.
    Scan {
        blocks: u64,
        highest_contiguous: u64,
        tail_hash: u64,
        stop: Option<u64>,
    },
    Range {
        first: u64,
        last: u64,
        boot: u64,
    },
    Corrupt {
        block: u64,
        reason: Corruption,
    },
    Break {
        seq: u64,
    },
    ScanEnd,
    /// The STOP record (`seq`) is durable; the guest powers off next.
    Stopped {
        seq: u64,
    },
    /// A record was damaged on purpose (negative control).
    Corrupted {
        seq: u64,
    },
    /// The disk is full: writing ended.
    Full {
        seq: u64,
    },
    Error {
        msg: String,
    },
    /// Answer to the host's "ping N" (port latency).
    Pong {
        n: u64,
    },
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Hello { mode, boot, blocks } => write!(f, "HELLO {mode} {boot} {blocks}"),
            Msg::Ack { seq, wall_ns, lat_us } => write!(f, "ACK {seq} {wall_ns} {lat_us}"),
            Msg::Scan { blocks, highest_contiguous, tail_hash, stop } => {
                write!(f, "SCAN {blocks} {highest_contiguous} {tail_hash:016x} {}", stop.map_or("-".to_string(), |s| s.to_string()))
            }
            Msg::Range { first, last, boot } => write!(f, "RANGE {first} {last} {boot:016x}"),
            Msg::Corrupt { block, reason } => write!(f, "CORRUPT {block} {}", reason.as_str()),
            Msg::Break { seq } => write!(f, "BREAK {seq}"),
            Msg::ScanEnd => write!(f, "SCANEND"),
            Msg::Stopped { seq } => write!(f, "STOPPED {seq}"),
            Msg::Corrupted { seq } => write!(f, "CORRUPTED {seq}"),
            Msg::Full { seq } => write!(f, "FULL {seq}"),
            Msg::Error { msg } => write!(f, "ERR {}", msg.replace('\n', " ")),
            Msg::Pong { n } => write!(f, "PONG {n}"),
        }
    }
}

impl Msg {
    pub fn parse(line: &str) -> Option<Msg> {
        let mut w = line.trim_end().split(' ');
        let tag = w.next()?;
        let mut num = || w.next()?.parse::<u64>().ok();
        let m = match tag {
            "ACK" => Msg::Ack { seq: num()?, wall_ns: num()?, lat_us: num().unwrap_or(0) },
            "BREAK" => Msg::Break { seq: num()? },
            "STOPPED" => Msg::Stopped { seq: num()? },
            "CORRUPTED" => Msg::Corrupted { seq: num()? },
            "FULL" => Msg::Full { seq: num()? },
            "PONG" => Msg::Pong { n: num()? },
            "SCANEND" => Msg::ScanEnd,
            _ => return Self::parse_rest(tag, line),
        };
        Some(m)
    }
    fn parse_rest(tag: &str, line: &str) -> Option<Msg> {
        let rest: Vec<&str> = line.trim_end().split(' ').skip(1).collect();
        Some(match (tag, rest.as_slice()) {
            ("HELLO", [mode, boot, blocks]) => Msg::Hello { mode: mode.to_string(), boot: boot.to_string(), blocks: blocks.parse().ok()? },
            ("SCAN", [blocks, hc, th, stop]) => Msg::Scan {
                blocks: blocks.parse().ok()?,
                highest_contiguous: hc.parse().ok()?,
                tail_hash: u64::from_str_radix(th, 16).ok()?,
                stop: if *stop == "-" { None } else { Some(stop.parse().ok()?) },
            },
            ("RANGE", [first, last, boot]) => Msg::Range { first: first.parse().ok()?, last: last.parse().ok()?, boot: u64::from_str_radix(boot, 16).ok()? },
            ("CORRUPT", [block, reason]) => Msg::Corrupt { block: block.parse().ok()?, reason: Corruption::parse(reason)? },
            ("ERR", _) => Msg::Error { msg: rest.join(" ") },
            _ => return None,
        })
    }
}

/// The lines that carry a scan report, in order.
pub fn scan_lines(r: &ScanReport) -> Vec<Msg> {
    let mut v = vec![Msg::Scan { blocks: r.blocks_scanned, highest_contiguous: r.highest_contiguous, tail_hash: r.tail_hash, stop: r.stop }];
    v.extend(r.ranges.iter().map(|&(first, last, boot)| Msg::Range { first, last, boot }));
    v.extend(r.corrupt.iter().map(|&(block, reason)| Msg::Corrupt { block, reason }));
    v.extend(r.chain_breaks.iter().map(|&seq| Msg::Break { seq }));
    v.push(Msg::ScanEnd);
    v
}

/// Reassembles a scan report from its lines; `None` until `ScanEnd` arrives.
#[derive(Default)]
pub struct ScanAssembler {
    report: Option<ScanReport>,
}

impl ScanAssembler {
    /// Feeds one message; returns the finished report at `ScanEnd`.
    pub fn feed(&mut self, m: &Msg) -> Option<ScanReport> {
        match m {
            Msg::Scan { blocks, highest_contiguous, tail_hash, stop } => {
                self.report = Some(ScanReport {
                    blocks_scanned: *blocks,
                    highest_contiguous: *highest_contiguous,
                    tail_hash: *tail_hash,
                    stop: *stop,
                    ..Default::default()
                });
            }
            Msg::Range { first, last, boot } => {
                if let Some(r) = self.report.as_mut() {
                    r.ranges.push((*first, *last, *boot))
                }
            }
            Msg::Corrupt { block, reason } => {
                if let Some(r) = self.report.as_mut() {
                    r.corrupt.push((*block, *reason))
                }
            }
            Msg::Break { seq } => {
                if let Some(r) = self.report.as_mut() {
                    r.chain_breaks.push(*seq)
                }
            }
            Msg::ScanEnd => return self.report.take(),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 24 bytes of record 1's payload for boot id [7; 16], as the probe has always written them.
    const PINNED: [u8; 24] = [75, 19, 40, 62, 139, 12, 246, 189, 65, 0, 155, 176, 231, 248, 177, 220, 165, 212, 233, 217, 166, 140, 44, 58];

    /// The payload stream is pinned: records written by an older probe still decode.
    #[test]
    fn the_payload_stream_is_pinned() {
        let mut out = [0u8; 24];
        fill_payload(1, &[7u8; 16], &mut out);
        assert_eq!(out, PINNED);
    }

    fn rec(seq: u64, prev: u64) -> Record {
        Record { kind: Kind::Data, seq, boot: [7; 16], wall_ns: 1, mono_ns: 2, prev_hash: prev }
    }

    fn disk(n: u64) -> Vec<Vec<u8>> {
        let mut blocks = vec![vec![0u8; BLOCK]];
        let mut prev = 0;
        for s in 1..=n {
            let mut b = vec![0u8; BLOCK];
            prev = encode(&rec(s, prev), &mut b);
            blocks.push(b);
        }
        blocks
    }

    fn scan(blocks: &[Vec<u8>]) -> ScanReport {
        let mut s = Scanner::new();
        for (i, b) in blocks.iter().enumerate() {
            s.push(i as u64, &decode(i as u64, b));
        }
        s.finish()
    }

    #[test]
    fn round_trip_and_chain() {
        let r = scan(&disk(10));
        assert_eq!(r.ranges, vec![(1, 10, boot_tag(&[7; 16]))]);
        assert!(r.holes().is_empty());
        assert_eq!(r.highest_contiguous, 10);
        assert!(r.corrupt.is_empty() && r.chain_breaks.is_empty());
        assert_eq!(r.count(), 10);
        assert!(r.contains(5) && !r.contains(11) && !r.contains(0));
    }

    #[test]
    fn hole_and_flipped_byte_are_seen() {
        let mut d = disk(10);
        d[4].fill(0); // hole at 4
        d[7][2000] ^= 0x40; // payload bit flip at 7
        let r = scan(&d);
        let t = boot_tag(&[7; 16]);
        assert_eq!(r.ranges, vec![(1, 3, t), (5, 6, t), (8, 10, t)]);
        assert_eq!(r.holes(), vec![(4, 4), (7, 7)]);
        assert_eq!(r.corrupt, vec![(7, Corruption::BadPayload)]);
        assert_eq!(r.highest_contiguous, 3);
    }

    #[test]
    fn header_damage_and_misplacement() {
        let mut d = disk(4);
        d[2][41] ^= 1; // wall clock byte
        assert_eq!(decode(2, &d[2]), Block::Corrupt(Corruption::BadHash));
        let moved = d[3].clone();
        assert_eq!(decode(4, &moved), Block::Corrupt(Corruption::Misplaced));
        let mut foreign = vec![0u8; BLOCK];
        foreign[100] = 1;
        assert_eq!(decode(1, &foreign), Block::Corrupt(Corruption::Foreign));
    }

    #[test]
    fn anything_in_block_0_is_foreign() {
        let mut d = disk(3);
        assert!(scan(&d).corrupt.is_empty());
        d[0][100] = 1;
        assert_eq!(scan(&d).corrupt, vec![(0, Corruption::Foreign)]);
        // even a well-formed record written there
        let mut d = disk(3);
        let mut b = vec![0u8; BLOCK];
        encode(&rec(0, 0), &mut b);
        d[0] = b;
        assert_eq!(scan(&d).corrupt, vec![(0, Corruption::Foreign)]);
    }

    #[test]
    fn out_of_chain_record_is_a_break() {
        let mut d = disk(5);
        // record 4 rewritten by another writer that did not chain onto record 3
        let mut b = vec![0u8; BLOCK];
        encode(&Record { boot: [9; 16], ..rec(4, 12345) }, &mut b);
        d[4] = b;
        let r = scan(&d);
        assert_eq!(r.chain_breaks, vec![4, 5]);
        // the foreign writer's record is its own range, tagged with its boot
        assert_eq!(r.ranges, vec![(1, 3, boot_tag(&[7; 16])), (4, 4, boot_tag(&[9; 16])), (5, 5, boot_tag(&[7; 16]))]);
        assert_eq!(r.boot_of(4), Some(boot_tag(&[9; 16])));
    }

    #[test]
    fn protocol_lines_round_trip() {
        let mut d = disk(6);
        d[3].fill(0);
        d[5][300] ^= 1;
        let mut r = scan(&d);
        r.stop = Some(6);
        let mut asm = ScanAssembler::default();
        let mut out = None;
        for m in scan_lines(&r) {
            let line = m.to_string();
            let parsed = Msg::parse(&line).unwrap_or_else(|| panic!("unparsed {line}"));
            assert_eq!(parsed, m);
            out = out.or(asm.feed(&parsed));
        }
        assert_eq!(out.unwrap(), r);
        for m in [
            Msg::Hello { mode: "write".into(), boot: "ab12".into(), blocks: 9 },
            Msg::Ack { seq: 3, wall_ns: 44, lat_us: 1500 },
            Msg::Stopped { seq: 5 },
            Msg::Pong { n: 7 },
            Msg::Error { msg: "no disk found".into() },
        ] {
            assert_eq!(Msg::parse(&m.to_string()), Some(m));
        }
        assert_eq!(Msg::parse("GARBAGE 1"), None);
        assert_eq!(Msg::parse("ACK x"), None);
    }
}
