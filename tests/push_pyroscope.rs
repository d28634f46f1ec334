//! `profile::push` against a real Pyroscope server (built by `.ci/run`, found through
//! `PYROSCOPE_BIN`): the push example's workload pushes every kind for a few intervals
//! while the server is restarted in the middle; then the server's own query API must
//! show every profile type, the CPU total the process measured (±5%: nothing lost
//! across the restart, nothing counted twice), the hottest function, the samples of the
//! `checkout` spans by label selector and by span id.
//!
//! Also: agents started by `profile::from_env()` (`PROFILE_PUSH`) flush at exit and on
//! SIGTERM; HTTPS with a private CA and basic auth, or a bearer token and a tenant,
//! through nginx in front of the server (as a hosted Pyroscope sits behind TLS and auth).
//!
//! Without `PYROSCOPE_BIN` (or nginx, for the HTTPS test) a test says so and passes,
//! except under `CI=true`, where it fails (CI builds the server and installs nginx).

#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

#[path = "../examples/push.rs"]
#[allow(unused_imports)]
mod example;

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The profile types every run must produce.
const TYPES: &[&str] = &[
    "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
    "process_cpu:samples:count:cpu:nanoseconds",
    "memory:inuse_space:bytes:space:bytes",
    "memory:inuse_objects:count:space:bytes",
    "memory:alloc_space:bytes:space:bytes",
    "memory:alloc_objects:count:space:bytes",
    "mutex:contentions:count:contentions:count",
    "mutex:delay:nanoseconds:contentions:count",
    "block:contentions:count:contentions:count",
    "block:delay:nanoseconds:contentions:count",
    "goroutines:goroutine:count:goroutine:count",
    "wall:wall:nanoseconds:wall:nanoseconds",
];

fn pyroscope_bin() -> Option<PathBuf> {
    match std::env::var_os("PYROSCOPE_BIN") {
        Some(p) if Path::new(&p).is_file() => Some(PathBuf::from(p)),
        other => {
            let why = match other {
                Some(p) => format!("PYROSCOPE_BIN={p:?} is not a file"),
                None => "PYROSCOPE_BIN is not set (.ci/run builds Pyroscope and sets it)".into(),
            };
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true needs a Pyroscope server: {why}"
            );
            eprintln!("skipped: {why}");
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Pyroscope server on 127.0.0.1 with its own storage directory.
struct Server {
    bin: PathBuf,
    dir: PathBuf,

    port: u16,
    grpc: u16,
    memberlist: u16,
    child: Option<Child>,
}

impl Server {
    fn start(bin: &Path, dir: &Path) -> Server {
        let mut s = Server {
            bin: bin.into(),
            dir: dir.into(),
            port: free_port(),
            grpc: free_port(),
            memberlist: free_port(),
            child: None,
        };
        s.spawn();
        s
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let a = "127.0.0.1";
        let d = |p: &str| self.dir.join(p).display().to_string();
        let mut args: Vec<String> = vec![
            format!("-server.http-listen-address={a}"),
            format!("-server.http-listen-port={}", self.port),
            format!("-server.grpc-listen-address={a}"),
            format!("-server.grpc-listen-port={}", self.grpc),
            format!("-memberlist.bind-addr={a}"),
            format!("-memberlist.bind-port={}", self.memberlist),
            format!("-memberlist.advertise-addr={a}"),
            format!("-memberlist.advertise-port={}", self.memberlist),
            "-storage.backend=filesystem".into(),
            format!("-storage.filesystem.dir={}", d("blocks")),
            format!("-pyroscopedb.data-path={}", d("data")),
            "-self-profiling.disable-push".into(),
            "-usage-stats.enabled=false".into(),
            "-config.show_banner=false".into(),
            format!("-ingester.lifecycler.addr={a}"),
        ];
        for ring in [
            "compactor.ring",
            "distributor.ring",
            "overrides-exporter.ring",
            "query-scheduler.ring",
            "store-gateway.sharding-ring",
        ] {
            args.push(format!("-{ring}.instance-addr={a}"));
        }
        args.push(format!("-query-frontend.instance-addr={a}"));

        std::fs::create_dir_all(&self.dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        // Its working directory is its own: Pyroscope writes `data-compactor/` there.
        let child = Command::new(&self.bin)
            .args(&args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("pyroscope starts");
        self.child = Some(child);
    }

    /// Waits until `/ready` answers 200.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(180);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .new_agent();
        loop {
            let last = match agent.get(format!("{}/ready", self.url())).call() {
                Ok(r) if r.status() == 200 => return,
                Ok(r) => format!("HTTP {}", r.status()),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "pyroscope not ready within 180 s (last: {last}); its log: {}",
                self.dir.join("server.log").display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// SIGTERM (Pyroscope flushes its head blocks), then waits for the exit.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill() with a valid pid and signal has no memory effects.
            unsafe { nix::libc::kill(c.id() as i32, nix::libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(60);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn post(url: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent();
    let mut r = agent
        .post(format!("{url}{path}"))
        .header("Content-Type", "application/json")
        .send(body.to_string().as_bytes())
        .unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    assert_eq!(r.status(), 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// (total, self value by function name) of a flame graph in the connect API's form
/// (`names`, `levels[].values` as groups of 4: offset, total, self, name index).
fn flame(v: &serde_json::Value) -> (i64, Vec<(String, i64)>) {
    let fg = &v["flamegraph"];
    let names: Vec<String> = fg["names"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| n.as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default();
    let num = |x: &serde_json::Value| {
        x.as_i64()
            .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0)
    };
    let mut selfs: std::collections::HashMap<String, i64> = Default::default();
    for level in fg["levels"].as_array().into_iter().flatten() {
        let values: Vec<i64> = level["values"]
            .as_array()
            .map(|a| a.iter().map(num).collect())
            .unwrap_or_default();
        for q in values.chunks(4) {
            if let [_, _, s, name] = q {
                *selfs
                    .entry(names.get(*name as usize).cloned().unwrap_or_default())
                    .or_default() += s;
            }
        }
    }
    let mut selfs: Vec<(String, i64)> = selfs.into_iter().collect();
    selfs.sort_by_key(|(_, v)| -v);
    (num(&fg["total"]), selfs)
}

/// The function with the most self time outside the standard library (a debug build
/// keeps `Range::next` and `rotate_left` as frames of their own).
fn hottest(selfs: &[(String, i64)]) -> &str {
    let library = |n: &str| {
        [
            "core::", "<core::", "alloc::", "<alloc::", "std::", "<std::", "<u", "<i",
        ]
        .iter()
        .any(|p| n.starts_with(p))
    };
    selfs
        .iter()
        .find(|(n, _)| !library(n))
        .map_or("", |(n, _)| n.as_str())
}

#[test]
fn every_kind_reaches_pyroscope_and_nothing_is_lost_across_a_restart() {
    let Some(bin) = pyroscope_bin() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&bin, dir.path());
    server.wait_ready();
    let url = server.url();
    let app = format!("push-test-{}", std::process::id());
    let interval = Duration::from_secs(1);
    let intervals = 16;
    let run = example::run(
        profile::push::pyroscope(&url, &app),
        interval,
        intervals,
        || {
            // Down for a few intervals: the agent queues and retries, then drains.
            server.stop();
            std::thread::sleep(interval * 3);
            server.spawn();
        },
    );
    println!("{run:?}");
    assert_eq!(run.stats.dropped, 0, "{:?}", run.stats);
    assert_eq!(run.stats.rejected, 0, "{:?}", run.stats);
    assert!(
        run.stats.failed_attempts > 0,
        "the restart made no upload fail: {:?}",
        run.stats
    );
    assert_eq!(run.stats.queued, 0, "{:?}", run.stats);
    server.wait_ready();

    let (start, end) = (ms(run.started) - 60_000, ms(run.stopped) + 60_000);
    let selector = |extra: &str| format!("{{service_name=\"{app}\"{extra}}}");
    // The server makes what it ingested queryable within seconds; wait for every type.
    let deadline = Instant::now() + Duration::from_secs(120);
    let types: Vec<String> = loop {
        let v = post(
            &url,
            "/querier.v1.QuerierService/ProfileTypes",
            serde_json::json!({"start": start, "end": end}),
        );
        let ids: Vec<String> = v["profileTypes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["ID"].as_str().map(str::to_owned))
            .collect();
        if TYPES.iter().all(|t| ids.iter().any(|i| i == t)) || Instant::now() > deadline {
            break ids;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    for t in TYPES {
        assert!(types.iter().any(|i| i == t), "{t} missing from {types:?}");
    }

    let merge = |ty: &str, sel: String| {
        post(
            &url,
            "/querier.v1.QuerierService/SelectMergeStacktraces",
            serde_json::json!({
                "profileTypeID": ty, "labelSelector": sel, "start": start, "end": end,
                "maxNodes": 16384
            }),
        )
    };
    // Every interval's CPU, before and after the restart (the ingester may still be
    // flushing: a few tries).
    let measured = run.cpu.as_nanos() as f64;
    let mut tries = 0;
    let (total, selfs) = loop {
        let (total, selfs) = flame(&merge(TYPES[0], selector("")));
        let ratio = total as f64 / measured;
        tries += 1;
        if (0.95..=1.05).contains(&ratio) || tries >= 20 {
            break (total, selfs);
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    let ratio = total as f64 / measured;
    println!(
        "pyroscope has {:.3} s of CPU for {app}; the process measured {:.3} s: {ratio:.3}",
        total as f64 / 1e9,
        measured / 1e9
    );
    assert!((0.95..=1.05).contains(&ratio), "CPU ratio {ratio:.3}");
    assert!(
        hottest(&selfs).ends_with("push_hot_loop"),
        "hottest: {:?}",
        &selfs[..selfs.len().min(5)]
    );

    // The span-labelled samples, by label selector: the hot loop inside `checkout`.
    let (span_total, span_selfs) = flame(&merge(TYPES[0], selector(",span_name=\"checkout\"")));
    assert!(span_total > 0, "no samples with span_name=checkout");
    assert!(
        hottest(&span_selfs).ends_with("push_hot_loop"),
        "{:?}",
        &span_selfs[..span_selfs.len().min(5)]
    );
    assert!(
        span_total < total,
        "every sample is in a span ({span_total} of {total})"
    );
    // And by span id (what Grafana's trace-to-profile link asks for).
    assert!(!run.span_ids.is_empty());
    let v = post(
        &url,
        "/querier.v1.QuerierService/SelectMergeSpanProfile",
        serde_json::json!({
            "profileTypeID": TYPES[0], "labelSelector": selector(""),
            "spanSelector": run.span_ids, "start": start, "end": end, "maxNodes": 16384
        }),
    );
    let (by_id, _) = flame(&v);
    assert!(by_id > 0, "no samples for span ids {:?}: {v}", run.span_ids);
    assert!(by_id <= span_total, "{by_id} > {span_total}");
    // The heap and contention kinds have the workload's own functions.
    for (ty, function) in [
        (TYPES[4], "push_allocate"),
        (TYPES[7], "push_hold_lock"),
        (TYPES[9], "push_hold_lock"),
    ] {
        let (t, selfs) = flame(&merge(ty, selector("")));
        assert!(t > 0, "{ty}: empty");
        let v = merge(ty, selector(""));
        let names = v["flamegraph"]["names"].to_string();
        assert!(
            names.contains(function),
            "{ty}: no {function} in {:?}",
            &selfs[..selfs.len().min(5)]
        );
    }
}

/// The CPU total and the hottest function Pyroscope has for `app`.
fn cpu_of(url: &str, app: &str, start: u64, end: u64) -> (i64, String) {
    let v = post(
        url,
        "/querier.v1.QuerierService/SelectMergeStacktraces",
        serde_json::json!({
            "profileTypeID": TYPES[0],
            "labelSelector": format!("{{service_name=\"{app}\"}}"),
            "start": start, "end": end, "maxNodes": 16384
        }),
    );
    let (total, selfs) = flame(&v);
    (total, hottest(&selfs).to_owned())
}

/// The child side of the environment test: `profile::from_env()` with `PROFILE_PUSH`
/// set (by the parent), some CPU work, then the way out the parent asked for.
#[test]
#[ignore = "run by environment_started_agents_flush_at_exit_and_on_sigterm"]
fn child_started_from_the_environment() {
    let Ok(way_out) = std::env::var("PUSH_CHILD_EXIT") else {
        return;
    };
    let guard = profile::from_env().expect("from_env");
    assert!(guard.is_none(), "PROFILE is not set: no guard");
    assert!(
        profile::push::stats().is_some(),
        "PROFILE_PUSH started no agent"
    );
    let mut x = 0u64;
    for _ in 0..200 {
        x ^= example::push_hot_loop(1_000_000);
    }
    std::hint::black_box(x);
    println!("READY");
    match way_out.as_str() {
        // `main` returning or process::exit: the atexit flush.
        "exit" => std::process::exit(0),
        // Killed by the parent's SIGTERM: the shutdown hook's flush.
        _ => loop {
            x ^= example::push_hot_loop(1_000_000);
            std::hint::black_box(x);
        },
    }
}

#[test]
fn environment_started_agents_flush_at_exit_and_on_sigterm() {
    let Some(bin) = pyroscope_bin() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&bin, dir.path());
    server.wait_ready();
    let url = server.url();
    let started = ms(SystemTime::now()) - 60_000;
    let nonce = std::process::id();
    let mut apps = Vec::new();
    for way_out in ["exit", "sigterm"] {
        let app = format!("env-{way_out}-{nonce}");
        // An interval longer than the child lives: only the final flush uploads.
        let env: Vec<(&str, std::ffi::OsString)> = vec![
            ("PUSH_CHILD_EXIT", way_out.into()),
            ("PROFILE_PUSH", url.clone().into()),
            ("PROFILE_APP", app.clone().into()),
            ("PROFILE_PUSH_KINDS", "cpu".into()),
            ("PROFILE_PUSH_INTERVAL", "600".into()),
        ];
        let env: Vec<(&str, &std::ffi::OsStr)> =
            env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        // Reaped below by common::wait_for_child (waitpid), which std's Child cannot see.
        #[allow(clippy::zombie_processes)]
        let child = common::spawn_ready("child_started_from_the_environment", &env);
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        if way_out == "sigterm" {
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        }
        let status = common::wait_for_child(pid, Duration::from_secs(120)).expect("the child hung");
        println!("{way_out}: {status:?}");
        match way_out {
            "exit" => assert!(
                matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)),
                "{status:?}"
            ),
            _ => assert!(
                matches!(
                    status,
                    nix::sys::wait::WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGTERM, _)
                ),
                "{status:?}"
            ),
        }
        apps.push(app);
    }
    let end = ms(SystemTime::now()) + 60_000;
    for app in apps {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (total, hot) = loop {
            let (total, hot) = cpu_of(&url, &app, started, end);
            if total > 0 || Instant::now() > deadline {
                break (total, hot);
            }
            std::thread::sleep(Duration::from_secs(1));
        };
        assert!(
            total > 0,
            "{app}: nothing arrived (the final flush did not happen)"
        );
        assert!(hot.ends_with("push_hot_loop"), "{app}: hottest {hot}");
    }
}

/// nginx on 127.0.0.1 terminating TLS (a certificate from a private CA) and asking for
/// basic auth in front of `upstream`, as a hosted Pyroscope (Grafana Cloud) sits behind
/// TLS and basic auth. None when nginx is not installed (and not CI).
struct Proxy {
    port: u16,
    bearer_port: u16,
    child: Child,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // SIGTERM to the master stops its workers too (SIGKILL would orphan them).
        // SAFETY: kill() with a valid pid and signal has no memory effects.
        unsafe { nix::libc::kill(self.child.id() as i32, nix::libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn nginx() -> Option<PathBuf> {
    for p in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(p).is_file() {
            return Some(p.into());
        }
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true needs nginx (Debian's nginx-light) for the HTTPS test"
    );
    eprintln!("skipped: no nginx for the HTTPS test (Debian's nginx-light)");
    None
}

/// Runs `openssl` with these whitespace-separated words (no word holds a space: the
/// temp directory's paths do not).
fn openssl(words: &str) {
    let out = Command::new("openssl")
        .args(words.split_whitespace())
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {words}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a certificate for 127.0.0.1 signed by it and its key, under `dir`; returns the
/// CA's PEM file.
fn private_ca(dir: &Path) -> PathBuf {
    let d = dir.display();
    assert!(
        !d.to_string().contains(char::is_whitespace),
        "the openssl calls need a temp directory without spaces: {d}"
    );
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&format!(
        "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=profile-guard-test-CA \
         -keyout {d}/ca.key -out {d}/ca.pem"
    ));
    openssl(&format!(
        "req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout {d}/key.pem -out {d}/leaf.csr"
    ));
    openssl(&format!(
        "x509 -req -in {d}/leaf.csr -CA {d}/ca.pem -CAkey {d}/ca.key -CAcreateserial -days 2 \
         -extfile {d}/ext -out {d}/cert.pem"
    ));
    dir.join("ca.pem")
}

/// Two servers: basic auth (`user`, `password`) on `port`, and on `bearer_port` a bearer
/// token and a tenant (`Authorization: Bearer {token}` and `X-Scope-OrgID: {tenant}`, as
/// Grafana Cloud and multi-tenant Pyroscope ask).
fn start_proxy(
    nginx: &Path,
    dir: &Path,
    upstream: &str,
    (user, password): (&str, &str),
    (token, tenant): (&str, &str),
) -> Proxy {
    let hash = Command::new("openssl")
        .args(["passwd", "-apr1", password])
        .output()
        .expect("openssl passwd");
    let hash = String::from_utf8(hash.stdout).unwrap();
    std::fs::write(dir.join("htpasswd"), format!("{user}:{}\n", hash.trim())).unwrap();
    let (port, bearer_port) = (free_port(), free_port());
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\nevents {{}}\n\
         http {{\n  access_log {d}/nginx-access.log;\n  client_body_temp_path {d}/body;\n  \
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
         scgi_temp_path {d}/scgi;\n  server {{\n    listen 127.0.0.1:{port} ssl;\n    \
         ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;\n    \
         client_max_body_size 64m;\n    location / {{\n      auth_basic \"pyroscope\";\n      \
         auth_basic_user_file {d}/htpasswd;\n      proxy_pass {upstream};\n    }}\n  }}\n  \
         server {{\n    listen 127.0.0.1:{bearer_port} ssl;\n    \
         ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;\n    \
         client_max_body_size 64m;\n    location / {{\n      \
         if ($http_authorization != \"Bearer {token}\") {{ return 401; }}\n      \
         if ($http_x_scope_orgid != \"{tenant}\") {{ return 403; }}\n      \
         proxy_pass {upstream};\n    }}\n  }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(nginx)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    // Listening once a TCP connect succeeds.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        || std::net::TcpStream::connect(("127.0.0.1", bearer_port)).is_err()
    {
        assert!(
            Instant::now() < deadline,
            "nginx did not listen; {d}/nginx-error.log"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Proxy {
        port,
        bearer_port,
        child,
    }
}

/// Pushes goroutine profiles to `url` for a second (`auth` adds credentials); the stats.
fn push_briefly(
    url: &str,
    app: &str,
    ca: Option<&Path>,
    auth: impl FnOnce(profile::push::Builder) -> profile::push::Builder,
) -> profile::push::PushStats {
    let mut b = profile::push::pyroscope(url, app)
        .no_cpu()
        .heap(false)
        .goroutines()
        .interval(Duration::from_millis(200))
        .flush_deadline(Duration::from_secs(5))
        .no_shutdown_hook();
    if let Some(ca) = ca {
        b = b.root_certificate_pem(std::fs::read(ca).unwrap());
    }
    let agent = auth(b).start().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let stats = agent.stop().unwrap();
    println!("{app}: {stats:?}");
    stats
}

#[test]
fn https_with_basic_auth_through_a_tls_proxy() {
    let (Some(bin), Some(nginx)) = (pyroscope_bin(), nginx()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&bin, &dir.path().join("pyroscope"));
    let ca = private_ca(dir.path());
    let proxy = start_proxy(
        &nginx,
        dir.path(),
        &server.url(),
        ("stack-123", "s3cret"),
        ("glc_tok-456", "tenant-7"),
    );
    server.wait_ready();
    let https = |userinfo: &str| format!("https://{userinfo}127.0.0.1:{}", proxy.port);

    // Without the CA the certificate is refused, and the stats say why.
    let s = push_briefly(&https("stack-123:s3cret@"), "tls-no-ca", None, |b| b);
    assert_eq!(s.uploads, 0, "{s:?}");
    let why = s.last_error.clone().unwrap_or_default();
    assert!(
        why.contains("certificate") || why.contains("UnknownIssuer"),
        "{s:?}"
    );
    // A wrong password: 401, rejected (not retried forever).
    let s = push_briefly(&https("stack-123:wrong@"), "tls-bad-auth", Some(&ca), |b| b);
    assert_eq!(s.uploads, 0, "{s:?}");
    assert!(s.rejected > 0, "{s:?}");
    assert!(
        s.last_error.as_deref().unwrap_or("").contains("401"),
        "{s:?}"
    );
    // The CA and the credentials: every upload accepted, and in Pyroscope.
    let s = push_briefly(&https("stack-123:s3cret@"), "tls-ok", Some(&ca), |b| b);
    assert!(s.uploads > 0, "{s:?}");
    assert_eq!((s.rejected, s.dropped), (0, 0), "{s:?}");
    wait_for_goroutines(&server.url(), "tls-ok");

    // A bearer token and a tenant, as Grafana Cloud takes them: a wrong token is a 401,
    // a missing tenant a 403 (both rejected), both right and every upload arrives.
    let bearer = format!("https://127.0.0.1:{}", proxy.bearer_port);
    let s = push_briefly(&bearer, "bearer-bad", Some(&ca), |b| {
        b.bearer_token("wrong").tenant_id("tenant-7")
    });
    assert!(s.uploads == 0 && s.rejected > 0, "{s:?}");
    assert!(
        s.last_error.as_deref().unwrap_or("").contains("401"),
        "{s:?}"
    );
    let s = push_briefly(&bearer, "bearer-no-tenant", Some(&ca), |b| {
        b.bearer_token("glc_tok-456")
    });
    assert!(s.uploads == 0 && s.rejected > 0, "{s:?}");
    assert!(
        s.last_error.as_deref().unwrap_or("").contains("403"),
        "{s:?}"
    );
    let s = push_briefly(&bearer, "bearer-ok", Some(&ca), |b| {
        b.bearer_token("glc_tok-456").tenant_id("tenant-7")
    });
    assert!(s.uploads > 0, "{s:?}");
    assert_eq!((s.rejected, s.dropped), (0, 0), "{s:?}");
    wait_for_goroutines(&server.url(), "bearer-ok");
}

/// Waits until Pyroscope answers with `app`'s goroutine profiles of the last two minutes
/// (a deadline only against a hang).
fn wait_for_goroutines(url: &str, app: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = ms(SystemTime::now());
        let v = post(
            url,
            "/querier.v1.QuerierService/SelectMergeStacktraces",
            serde_json::json!({
                "profileTypeID": "goroutines:goroutine:count:goroutine:count",
                "labelSelector": format!("{{service_name=\"{app}\"}}"),
                "start": now - 120_000, "end": now + 60_000, "maxNodes": 1024
            }),
        );
        if flame(&v).0 > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{app}'s profiles are not in Pyroscope"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}
