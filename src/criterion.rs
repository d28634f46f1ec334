//! CPU profiles of criterion benchmarks (cargo feature `criterion`): the `-cpuprofile` of
//! Go benchmarks.
//!
//! ```no_run
//! use criterion::{Criterion, criterion_group, criterion_main};
//!
//! fn bench(c: &mut Criterion) {
//!     c.bench_function("sum", |b| b.iter(|| (0..1000u64).sum::<u64>()));
//! }
//!
//! fn profiled() -> Criterion {
//!     Criterion::default().with_profiler(profile::criterion::Profiler::new())
//! }
//!
//! criterion_group! { name = benches; config = profiled(); targets = bench }
//! criterion_main!(benches);
//! ```
//!
//! `cargo bench --bench NAME -- --profile-time 5` then runs each benchmark for 5 s under
//! the CPU profiler and writes `target/criterion/<benchmark>/profile/cpu.pb.gz` (criterion's
//! output directory for the benchmark); without `--profile-time` the profiler is not
//! called. Open the file with `profile-report top` or `go tool pprof`.

use std::path::Path;

use crate::runtime::cpu::{self, CpuProfiler};
use crate::{Error, output};

/// The file written into each benchmark's profile directory.
pub const FILE_NAME: &str = "cpu.pb.gz";

/// A [`criterion::profiler::Profiler`] that CPU-profiles each benchmark while criterion
/// runs it with `--profile-time`, and writes [`FILE_NAME`] into the directory criterion
/// gives it. Problems (a CPU profile already running, an unwritable directory) are printed
/// on stderr: criterion's trait has no way to return them, and the benchmark still runs.
#[derive(Debug)]
pub struct Profiler {
    hz: u32,
    running: Option<CpuProfiler>,
    quiet: bool,
}

impl Default for Profiler {
    fn default() -> Self {
        Profiler::new()
    }
}

impl Profiler {
    /// Samples at [`cpu::DEFAULT_FREQUENCY`] (100 Hz, as Go's `-cpuprofile`).
    pub fn new() -> Profiler {
        Profiler {
            hz: cpu::DEFAULT_FREQUENCY,
            running: None,
            quiet: false,
        }
    }

    /// Samples at `hz` per CPU-second instead; [`Error::InvalidFrequency`] for 0 or
    /// above [`cpu::MAX_FREQUENCY`].
    pub fn with_frequency(hz: u32) -> Result<Profiler, Error> {
        cpu::validate(hz)?;
        Ok(Profiler {
            hz,
            ..Profiler::new()
        })
    }

    /// Does not print the path of each profile written (errors are still printed).
    pub fn quiet(mut self) -> Profiler {
        self.quiet = true;
        self
    }

    /// Starts profiling (what criterion calls before a benchmark's profiling run).
    pub fn start(&mut self) -> Result<(), Error> {
        if self.running.is_some() {
            return Err(Error::AlreadyActive {
                mode: crate::ProfileKind::Cpu,
            });
        }
        self.running = Some(cpu::start(self.hz)?);
        Ok(())
    }

    /// Stops profiling and writes `dir/cpu.pb.gz` (created with its parents if missing;
    /// written completely or not at all). Returns the path written.
    pub fn stop(&mut self, dir: &Path) -> Result<std::path::PathBuf, Error> {
        let running = self.running.take().ok_or(Error::NotRunning {
            mode: crate::ProfileKind::Cpu,
        })?;
        let profile = running.stop()?;
        output::prepare_dir(dir)?;
        let path = dir.join(FILE_NAME);
        output::write_atomic(&path, |w| profile.write_to(w))?;
        Ok(path)
    }
}

impl criterion::profiler::Profiler for Profiler {
    fn start_profiling(&mut self, benchmark_id: &str, _benchmark_dir: &Path) {
        if let Err(e) = self.start() {
            eprintln!("profile: criterion: not profiling {benchmark_id}: {e}");
        }
    }

    fn stop_profiling(&mut self, benchmark_id: &str, benchmark_dir: &Path) {
        if self.running.is_none() {
            return;
        }
        match self.stop(benchmark_dir) {
            Ok(path) if !self.quiet => {
                eprintln!("profile: criterion: {benchmark_id}: {}", path.display());
            }
            Ok(_) => {}
            Err(e) => eprintln!("profile: criterion: no profile for {benchmark_id}: {e}"),
        }
    }
}
