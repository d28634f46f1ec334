//! The profile reader and every report over what it accepts: arbitrary bytes must give a
//! profile or an error, never a panic, a hang or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use profile::report;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = report::read(data) else { return };
    let options = report::Options::default();
    let _ = report::top(&p, &options).map(|t| t.to_string());
    let _ = report::folded(&p, &options);
    let _ = report::text(&p, &options);
    let _ = report::diff(&p, &p, &options);
    for i in 0..p.sample_types.len().min(4) {
        let o = report::Options::default().sample_index(i.to_string()).node_count(3);
        let _ = report::top(&p, &o);
    }
});
