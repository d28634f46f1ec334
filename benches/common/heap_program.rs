//! The `program` workload of the heap benchmarks (`heap_overhead`, `heap_workload`, and
//! `benches/jemalloc`): what allocation-heavy Rust code does, through the global
//! allocator.

use std::hint::black_box;

/// A small allocation-heavy program. Its collections allocate through the global
/// allocator (which the benchmarks switch between configurations).
#[inline(never)]
pub fn program(iterations: usize, seed: u64) -> u64 {
    use std::collections::HashMap;
    use std::fmt::Write;
    #[derive(Debug)]
    enum Tree {
        Leaf(u64),
        Node(Box<Tree>, Box<Tree>),
    }
    fn build(depth: u32, x: u64) -> Tree {
        if depth == 0 {
            Tree::Leaf(x)
        } else {
            Tree::Node(
                Box::new(build(depth - 1, x.wrapping_mul(3))),
                Box::new(build(depth - 1, x ^ 0x55)),
            )
        }
    }
    fn sum(t: &Tree) -> u64 {
        match t {
            Tree::Leaf(x) => *x,
            Tree::Node(a, b) => sum(a).wrapping_add(sum(b)),
        }
    }
    let mut total = 0u64;
    for i in 0..iterations {
        let x = seed.wrapping_add(i as u64);
        let mut words: Vec<String> = Vec::new();
        for j in 0..32u64 {
            let mut s = String::new();
            write!(s, "item-{}-{}", x, j * 7919).unwrap();
            words.push(s);
        }
        let mut index: HashMap<String, Vec<u32>> = HashMap::new();
        for (k, w) in words.iter().enumerate() {
            index
                .entry(w[..w.len().min(9)].to_owned())
                .or_default()
                .push(k as u32);
        }
        let tree = build(5, x);
        total = total
            .wrapping_add(sum(&tree))
            .wrapping_add(index.len() as u64);
        total = total.wrapping_add(words.iter().map(|w| w.len() as u64).sum::<u64>());
    }
    black_box(total)
}
