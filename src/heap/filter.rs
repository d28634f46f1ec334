//! The free gate: how the allocator wrapper tells a free of an unsampled block (nearly
//! every free) from a free of a live sample without taking the sampler's lock.
//!
//! A free reads two things, lock-free: the **size gate** (bit `k` set while some live
//! sample has a size in `[2^k, 2^(k+1))`; one word, always in cache) and, only for a size
//! with live samples, one bit of the **address filter** (bit `hash(address)` set while
//! some live sample hashes there). A free that passes both goes to the sampler's lock and
//! live table; if the block was not sampled that is a false positive, whose probability is
//! about live samples / filter bits.
//!
//! # The filter grows with the live samples
//!
//! Three levels (the table `LEVEL`): 2^16 bits (8 KiB, the size that stays in L1 beside
//! the program's data) up to 4 096 live samples, where ~6% of the frees it lets through
//! are false positives; then 2^20 bits (128 KiB: past L1 a filter misses it anyway, so
//! the step is large) up to 16 384 (1.6%); then 2^22 (512 KiB; 3.1% at the live table's
//! limit of 131 072). A fixed 8 KiB filter sent ~22% of those frees to the lock with
//! 16 000 live samples (an 8 GiB heap at the default 512 KiB rate): a spin lock that every
//! core's frees share. Growing costs one pass over the live table under the lock (at most
//! twice between two clears); a level is not shrunk until the tables are cleared (a rate
//! change).
//!
//! # Readers that hold an older level
//!
//! A free reads the filter's descriptor (the address of its words, tagged in the low six
//! bits with the shift that maps a hash to a bit) and then one word. The writer, always
//! under the sampler's lock, fills a new level completely before it publishes the
//! descriptor (release; the reader's load is acquire), and never writes to a level it left
//! until that level is chosen again after a clear. So a free that read the older
//! descriptor still finds every block that was live when the level changed (its bits stay
//! set, only false positives grow); a block sampled after the change was recorded before
//! its free began, so that free reads the new descriptor or a later one. After a clear, a
//! free of a block recorded before it may miss: the clear forgot that block anyway.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use super::mapped::{zeroed, zeroed_atomic};

/// The filter's levels: log2 of its bits, and the live samples above which it is left for
/// the next. The first stays in L1 (8 KiB) and is kept until false positives reach ~6%;
/// past it a filter misses L1 anyway, so the next is 16 times as large (128 KiB, in L2),
/// and the last (512 KiB) takes over at 1.6%.
const LEVEL: [(u32, usize); 3] = [(16, 4_096), (20, 16_384), (22, usize::MAX)];
/// Filter levels.
const LEVELS: usize = LEVEL.len();
/// A slot's count sticks here (never decremented, its bit never cleared until the next
/// clear or level change): more false positives, never a missed free.
const STUCK: u8 = u8::MAX;

/// log2 of the bits of `level`.
const fn log_bits(level: usize) -> u32 {
    LEVEL[level].0
}

/// Bits of `level`.
const fn bits(level: usize) -> usize {
    1 << log_bits(level)
}

/// Memory the filters reserve (untouched pages are not resident): every level's words
/// and the counts of the largest.
pub(crate) const RESERVED_BYTES: usize = {
    let mut words = 0;
    let mut level = 0;
    while level < LEVELS {
        words += bits(level) / 64;
        level += 1;
    }
    words * size_of::<u64>() + bits(LEVELS - 1) * size_of::<u8>()
};

/// The descriptor's words: aligned so that its low six bits are free for the shift.
#[repr(C, align(64))]
struct Aligned([AtomicU64; 16]);

/// The filter before any tables exist: 2^10 bits, never set (shift 54).
static EMPTY: Aligned = Aligned([const { AtomicU64::new(0) }; 16]);

/// `words` tagged with `shift` (at most 63; `words` is 64-byte aligned).
const fn descriptor(words: *const AtomicU64, shift: u32) -> *mut AtomicU64 {
    words.cast_mut().wrapping_byte_add(shift as usize)
}

/// The bit of the filter with `2^(64 - shift)` bits (at least 2^10) that `addr` hashes
/// to: the filter's 512-bit line by a hash of the address's 4 KiB page, the bit in it by
/// the address's 16-byte granule (`addr / 16 % 512`). Blocks that are close share a line,
/// so a program's frees touch a few of the filter's lines, not one line per block (with
/// a filter larger than L1 that was a miss per free); false positives are as rare as
/// with a hash of the whole address, since any live sample's line and bit are as likely.
#[inline(always)] // inlined into every free while a sample of that size is live
fn slot(addr: usize, shift: u32) -> usize {
    let page = (addr >> 12) as u64;
    let line = (page.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (shift + 9)) as usize;
    (line << 9) | ((addr >> 4) & 511)
}

/// The size class of a `size`-byte block: its power of two.
#[inline(always)] // as `slot`
fn size_class(size: usize) -> usize {
    (usize::BITS - 1 - size.max(1).leading_zeros()) as usize
}

/// What a free reads, in one cache line pair of its own (so that writes to neighbouring
/// statics by other cores never invalidate it; adjacent-line prefetch pairs lines).
#[repr(align(128))]
pub(crate) struct Gate {
    /// The size gate: bit `k`, some live sample has a size in `[2^k, 2^(k+1))`. Zero
    /// whenever sampling is off (the tables are cleared then).
    sizes: AtomicU64,
    /// The current level's descriptor.
    filter: AtomicPtr<AtomicU64>,
}

impl Gate {
    /// A gate that lets no free through.
    pub(crate) const fn new() -> Gate {
        Gate {
            sizes: AtomicU64::new(0),
            filter: AtomicPtr::new(descriptor((&raw const EMPTY.0).cast(), 54)),
        }
    }

    /// Whether some live sample has the size class of a `size`-byte block: one load.
    #[inline(always)] // on every free: inlined into the caller's crate
    pub(crate) fn size_may_hold(&self, size: usize) -> bool {
        let sizes = self.sizes.load(Ordering::Relaxed);
        sizes != 0 && sizes & (1 << size_class(size)) != 0
    }

    /// Both checks: whether the `size`-byte block at `ptr` may be a live sample.
    #[cfg(test)]
    fn may_hold(&self, ptr: *mut u8, size: usize) -> bool {
        self.size_may_hold(size) && self.filter_has(ptr as usize)
    }

    /// The filter's bit for `addr` (asked after [`Self::size_may_hold`], out of line): the
    /// descriptor, then one word.
    #[inline(always)] // into the wrapper's cold functions
    pub(crate) fn filter_has(&self, addr: usize) -> bool {
        // Acquire: the words of a level are filled before its descriptor is published.
        let tagged = self.filter.load(Ordering::Acquire);
        let shift = (tagged.addr() & 63) as u32;
        let slot = slot(addr, shift);
        // SAFETY: every descriptor ever stored in `filter` is `EMPTY` tagged 54 or a level
        // of `Filters` tagged `64 - log2(bits)`: memory of 2^(64 - shift) bits that is
        // never freed (`zeroed_atomic` maps it for the process's lifetime). `slot` is
        // below 2^(64 - shift), so word `slot / 64` is inside it.
        let word = unsafe { &*tagged.map_addr(|a| a & !63).add(slot / 64) };
        word.load(Ordering::Relaxed) & (1 << (slot % 64)) != 0
    }
}

/// The writer's side of a [`Gate`]: the levels and the counts behind each bit. Every
/// method is called with the sampler's lock held.
pub(crate) struct Filters {
    gate: &'static Gate,
    levels: [&'static [AtomicU64]; LEVELS],
    /// The published level.
    level: usize,
    /// Live samples per slot of the published level (its first `bits(level)` entries).
    counts: &'static mut [u8],
    /// Live samples per size class.
    classes: [u32; 64],
    /// Live samples in the filter.
    live: usize,
}

impl Filters {
    /// Empty filters (fresh anonymous mappings) publishing through `gate`, which the
    /// first level replaces at once.
    pub(crate) fn new(gate: &'static Gate) -> Filters {
        let levels = std::array::from_fn(|level| zeroed_atomic(bits(level) / 64));
        let filters = Filters {
            gate,
            levels,
            level: 0,
            counts: zeroed(bits(LEVELS - 1)),
            classes: [0; 64],
            live: 0,
        };
        filters.publish();
        filters
    }

    fn publish(&self) {
        let shift = 64 - log_bits(self.level);
        let tagged = descriptor(self.levels[self.level].as_ptr(), shift);
        self.gate.filter.store(tagged, Ordering::Release);
    }

    /// The published level (0 = the 8 KiB filter).
    #[cfg(test)]
    pub(crate) fn level(&self) -> usize {
        self.level
    }

    /// Called before [`Self::insert`]: if one more live sample calls for the next level,
    /// moves to it, filled with `live()` (the address of every live sample inserted
    /// before), then published. Returns whether it did.
    pub(crate) fn make_room<I: Iterator<Item = usize>>(
        &mut self,
        live: impl FnOnce() -> I,
    ) -> bool {
        if self.live < LEVEL[self.level].1 {
            return false;
        }
        let next = self.level + 1;
        // Unpublished since a clear (or never published): a free that still holds its
        // descriptor read it before that clear, which forgot its samples (module docs).
        for word in self.levels[next] {
            word.store(0, Ordering::Relaxed);
        }
        self.counts[..bits(next)].fill(0);
        self.level = next;
        let mut filled = 0;
        for addr in live() {
            self.set(addr);
            filled += 1;
        }
        debug_assert_eq!(filled, self.live);
        self.publish();
        true
    }

    /// A live sample of `size` bytes at `addr`.
    pub(crate) fn insert(&mut self, addr: usize, size: usize) {
        let class = size_class(size);
        self.classes[class] += 1;
        if self.classes[class] == 1 {
            self.gate.sizes.fetch_or(1 << class, Ordering::Relaxed);
        }
        self.set(addr);
        self.live += 1;
    }

    fn set(&mut self, addr: usize) {
        let f = slot(addr, 64 - log_bits(self.level));
        match self.counts[f] {
            0 => {
                self.levels[self.level][f / 64].fetch_or(1 << (f % 64), Ordering::Relaxed);
                self.counts[f] = 1;
            }
            STUCK => {}
            n => self.counts[f] = n + 1,
        }
    }

    /// The sample of `size` bytes at `addr`, inserted before, is no longer live.
    pub(crate) fn remove(&mut self, addr: usize, size: usize) {
        let class = size_class(size);
        self.classes[class] -= 1;
        if self.classes[class] == 0 {
            self.gate.sizes.fetch_and(!(1 << class), Ordering::Relaxed);
        }
        let f = slot(addr, 64 - log_bits(self.level));
        match self.counts[f] {
            STUCK => {}
            1 => {
                self.counts[f] = 0;
                self.levels[self.level][f / 64].fetch_and(!(1 << (f % 64)), Ordering::Relaxed);
            }
            n => self.counts[f] = n - 1,
        }
        self.live -= 1;
    }

    /// No live samples: the first level, empty, published; the size gate closed.
    pub(crate) fn clear(&mut self) {
        self.gate.sizes.store(0, Ordering::Relaxed);
        self.classes = [0; 64];
        // Counts are zero again once every sample is removed, unless one stuck.
        if self.live > 0 || self.level > 0 || self.counts[..bits(self.level)].contains(&STUCK) {
            self.counts[..bits(self.level)].fill(0);
        }
        self.level = 0;
        for word in self.levels[0] {
            word.store(0, Ordering::Relaxed);
        }
        self.live = 0;
        self.publish();
    }

    /// Whether every count is zero (the unit tests).
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0 && self.counts.iter().all(|&c| c == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> &'static Gate {
        Box::leak(Box::new(Gate::new()))
    }

    /// Distinct, 16-byte aligned, scattered addresses.
    fn addrs(seed: u64, n: usize) -> Vec<usize> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x >> 16) << 4) as usize
            })
            .collect()
    }

    #[test]
    fn an_empty_gate_lets_nothing_through() {
        let g = gate();
        assert!(
            addrs(1, 1000)
                .iter()
                .all(|&a| !g.may_hold(a as *mut u8, 64))
        );
        let f = Filters::new(g);
        assert_eq!(f.level(), 0);
        assert!(
            addrs(2, 1000)
                .iter()
                .all(|&a| !g.may_hold(a as *mut u8, 64))
        );
    }

    #[test]
    fn every_live_sample_is_found_across_growth_and_false_positives_stay_low() {
        let g = gate();
        let mut f = Filters::new(g);
        let live = addrs(3, 20_000);
        let mut levels_seen = vec![0];
        // Descriptors of the levels left behind, as a free that read them holds them.
        let mut older = Vec::new();
        for (i, &a) in live.iter().enumerate() {
            let before = g.filter.load(Ordering::Acquire);
            if f.make_room(|| live[..i].iter().copied()) {
                older.push((before, i));
                levels_seen.push(f.level());
            }
            f.insert(a, 64);
        }
        assert_eq!(levels_seen, [0, 1, 2], "grows at 4 096 and 16 384");
        assert!(live.iter().all(|&a| g.may_hold(a as *mut u8, 64)));
        // The size gate: other classes pass nothing.
        assert!(live.iter().all(|&a| !g.may_hold(a as *mut u8, 4096)));
        // A free that read an older descriptor still finds what was live then.
        for &(tagged, then) in &older {
            let held = Gate {
                sizes: AtomicU64::new(u64::MAX),
                filter: AtomicPtr::new(tagged),
            };
            assert!(
                live[..then]
                    .iter()
                    .all(|&a| held.may_hold(a as *mut u8, 64))
            );
        }
        // 20 000 live samples in 2^22 bits: about 0.5% false positives.
        let others = addrs(4, 100_000);
        let positives = others
            .iter()
            .filter(|&&a| g.may_hold(a as *mut u8, 64))
            .count();
        assert!(positives < 1_500, "{positives} false positives in 100 000");
        for &a in &live {
            f.remove(a, 64);
        }
        assert!(f.is_empty());
        assert!(live.iter().all(|&a| !g.may_hold(a as *mut u8, 64)));
        assert_eq!(g.sizes.load(Ordering::Relaxed), 0);
        f.clear();
        assert_eq!(f.level(), 0);
    }

    #[test]
    fn a_fixed_first_level_would_not_have_kept_false_positives_low() {
        // The reason for growing: 16 384 samples in 2^16 bits pass ~22% of other frees.
        let g = gate();
        let mut f = Filters::new(g);
        for a in addrs(5, 16_384) {
            f.insert(a, 64);
        }
        assert_eq!(f.level(), 0);
        let positives = addrs(6, 10_000)
            .iter()
            .filter(|&&a| g.may_hold(a as *mut u8, 64))
            .count();
        assert!(positives > 1_500, "{positives}");
    }

    #[test]
    fn stuck_counts_keep_their_bit_until_a_clear() {
        let g = gate();
        let mut f = Filters::new(g);
        // 300 samples at one address (a stale record reused over and over would do it).
        for _ in 0..300 {
            f.insert(0x1000, 32);
        }
        for _ in 0..300 {
            f.remove(0x1000, 32);
        }
        assert_eq!(g.sizes.load(Ordering::Relaxed), 0, "the size gate is exact");
        g.sizes.store(u64::MAX, Ordering::Relaxed);
        assert!(g.filter_has(0x1000), "a stuck slot stays set");
        f.clear();
        assert!(!g.filter_has(0x1000));
        assert!(f.is_empty());
    }

    #[test]
    fn reserved_bytes_count_every_level() {
        assert_eq!(RESERVED_BYTES, (8 + 128 + 512) * 1024 + 4 * 1024 * 1024);
    }
}
