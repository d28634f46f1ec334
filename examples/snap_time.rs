fn main() {
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let s = profile::runtime::threads::snapshot().unwrap();
        println!("snapshot {:?} capture {:?}", t.elapsed(), s.capture_time());
    }
}
