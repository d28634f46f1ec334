//! `Profile::decode` reads every profile Go 1.19 wrote (tests/fixtures/go1.19) with the
//! sample types pprof-compat documents, and re-encodes them losslessly.

use std::path::Path;

use profile::{LabelValue, Profile};

fn fixture(name: &str) -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/go1.19")
        .join(name);
    Profile::decode(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn types(p: &Profile) -> Vec<String> {
    p.sample_types
        .iter()
        .map(|t| format!("{}/{}", t.ty, t.unit))
        .collect()
}

#[test]
fn every_go_fixture_decodes_with_the_documented_sample_types() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "cpu.pb.gz",
            &["samples/count", "cpu/nanoseconds"],
            "cpu/nanoseconds",
        ),
        (
            "heap.pb.gz",
            &[
                "alloc_objects/count",
                "alloc_space/bytes",
                "inuse_objects/count",
                "inuse_space/bytes",
            ],
            "space/bytes",
        ),
        (
            "allocs.pb.gz",
            &[
                "alloc_objects/count",
                "alloc_space/bytes",
                "inuse_objects/count",
                "inuse_space/bytes",
            ],
            "space/bytes",
        ),
        (
            "mutex.pb.gz",
            &["contentions/count", "delay/nanoseconds"],
            "contentions/count",
        ),
        (
            "block.pb.gz",
            &["contentions/count", "delay/nanoseconds"],
            "contentions/count",
        ),
        ("goroutine.pb.gz", &["goroutine/count"], "goroutine/count"),
        (
            "threadcreate.pb.gz",
            &["threadcreate/count"],
            "threadcreate/count",
        ),
    ];
    for (name, want, period) in cases {
        let p = fixture(name);
        assert_eq!(types(&p), *want, "{name}");
        let pt = p.period_type.as_ref().unwrap();
        assert_eq!(format!("{}/{}", pt.ty, pt.unit), *period, "{name}");
        // Lossless: encode and decode again.
        assert_eq!(Profile::decode(&p.encode()).unwrap(), p, "{name}");
    }
}

#[test]
fn go_cpu_fixture_has_the_known_split() {
    let p = fixture("cpu.pb.gz");
    let share = |f: &str| -> i64 {
        p.samples
            .iter()
            .filter(|s| p.stack_names(s).contains(&f))
            .map(|s| s.values[0])
            .sum()
    };
    let hot = share("main.hotThree") as f64;
    let cold = share("main.coldOne") as f64;
    let ratio = hot / (hot + cold);
    assert!((0.65..=0.85).contains(&ratio), "{ratio}");
    assert_eq!(p.period, 10_000_000);
}

#[test]
fn allocs_fixture_sets_default_sample_type_and_heap_has_bytes_labels() {
    assert_eq!(
        fixture("allocs.pb.gz").default_sample_type.as_deref(),
        Some("alloc_space")
    );
    let heap = fixture("heap.pb.gz");
    assert_eq!(heap.default_sample_type, None);
    assert!(heap.samples.iter().any(|s| s.labels.iter().any(
        |l| l.key == "bytes" && matches!(&l.value, LabelValue::Num { value, .. } if *value > 0)
    )));
}
