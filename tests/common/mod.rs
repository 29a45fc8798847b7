//! A real redis-server for each test: a random loopback port, its own
//! temporary directory, killed on drop, its log printed when a test fails or
//! the server dies.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

pub use redis::Value;

/// The module under test: `REDIS_MMAP_MODULE`, or the release build.
pub fn module_path() -> PathBuf {
    if let Ok(p) = std::env::var("REDIS_MMAP_MODULE") {
        return PathBuf::from(p);
    }
    built("release")
}

/// The debug build with `--features fault-injection`, for panic tests.
pub fn fault_module_path() -> PathBuf {
    built("debug")
}

fn built(profile: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let so = target.join(profile).join("libredis_mmap.so");
    let built = fs::metadata(&so)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: run `make test`", so.display()));
    let newest_src = newest(&root.join("src"));
    assert!(
        built >= newest_src,
        "{} is older than src/: run `make test`, which builds it first",
        so.display()
    );
    so
}

fn newest(dir: &Path) -> SystemTime {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                newest(&p)
            } else {
                e.metadata().unwrap().modified().unwrap()
            }
        })
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The cores this machine has, as the module counts them for `mmap.threads`.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How to start a server.
#[derive(Clone)]
pub struct Opts {
    /// Lines added to redis.conf.
    pub conf: Vec<String>,
    /// Arguments after the module path on the `loadmodule` line.
    pub module_args: Vec<String>,
    /// Whether redis.conf loads the module at all.
    pub load_module: bool,
    pub module: PathBuf,
    /// Arguments after redis.conf on the redis-server command line.
    pub cli: Vec<String>,
    /// A file size limit (RLIMIT_FSIZE) for the server, with SIGXFSZ
    /// ignored, so that a write past it fails with EFBIG.
    pub fsize_limit: Option<u64>,
    /// An open-file limit (RLIMIT_NOFILE) for the server: hard, and soft
    /// unless `soft_open_files` sets that lower.
    pub open_files: Option<u64>,
    pub soft_open_files: Option<u64>,
    /// A descriptor number the server starts with open (on /dev/null), as
    /// one inherited from whatever started it would be.
    pub inherited_fd: Option<i32>,
    /// The server binary: `redis_server()` (the server under test) unless set.
    pub server: Option<String>,
    /// A user id (and group id) to run the server as, instead of the
    /// runner's; its home is handed to that user.
    pub user: Option<u32>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            conf: Vec::new(),
            module_args: Vec::new(),
            load_module: true,
            module: module_path(),
            cli: Vec::new(),
            fsize_limit: None,
            open_files: None,
            soft_open_files: None,
            inherited_fd: None,
            server: None,
            user: None,
        }
    }
}

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    /// Holds redis.conf, the log, the RDB, and `data/`, the default mmap.dir.
    pub home: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    opts: Opts,
    /// Whether dropping it prints its log after a failure (not for the
    /// short-lived servers of a restart).
    report: bool,
}

impl Server {
    pub fn start() -> Server {
        Server::with(Opts::default())
    }

    pub fn with(opts: Opts) -> Server {
        Server::try_with(opts).unwrap_or_else(|log| panic!("redis-server did not start:\n{log}"))
    }

    /// The mmap.dir of a default server.
    pub fn data(&self) -> PathBuf {
        self.home.join("data")
    }

    /// The running server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running server").id()
    }

    /// Starts a server in the home of another one (stopped, and kept
    /// alive by the caller, since it owns the directory); on failure
    /// returns the log.
    pub fn try_with_home(home: PathBuf, opts: Opts) -> Result<Server, String> {
        let mut s = Server::spawn(home, opts)?;
        s.report = true;
        Ok(s)
    }

    /// The options it was started with.
    pub fn opts(&self) -> Opts {
        self.opts.clone()
    }

    /// Tries to start; on failure returns the log.
    pub fn try_with(opts: Opts) -> Result<Server, String> {
        let tmp = tempfile::Builder::new().prefix("redis-mmap-test").tempdir().unwrap();
        let home = tmp.path().to_path_buf();
        fs::create_dir_all(home.join("data")).unwrap();
        if let Some(id) = opts.user {
            for dir in [home.clone(), home.join("data")] {
                std::os::unix::fs::chown(&dir, Some(id), Some(id)).unwrap();
            }
        }
        let mut s = Server::spawn(home, opts)?;
        s._tmp = Some(tmp);
        s.report = true;
        Ok(s)
    }

    fn spawn(home: PathBuf, opts: Opts) -> Result<Server, String> {
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut conf = vec![
                format!("port {port}"),
                "bind 127.0.0.1".into(),
                format!("dir {}", home.display()),
                "logfile redis.log".into(),
                "daemonize no".into(),
                "save \"\"".into(),
                "appendonly no".into(),
                "enable-debug-command local".into(),
                "enable-module-command local".into(),
                // Leaves descriptors for keys whatever the machine's limit;
                // a test's own `maxclients` line comes later and wins.
                "maxclients 1000".into(),
            ];
            if opts.load_module {
                let mut line = format!("loadmodule {}", opts.module.display());
                let args = if opts.module_args.is_empty() {
                    vec!["dir".to_string(), home.join("data").display().to_string()]
                } else {
                    opts.module_args.clone()
                };
                for a in args {
                    line.push(' ');
                    line.push_str(&a);
                }
                conf.push(line);
            }
            conf.extend(opts.conf.iter().cloned());
            let conf_path = home.join("redis.conf");
            fs::write(&conf_path, conf.join("\n") + "\n").unwrap();
            let _ = fs::remove_file(home.join("redis.log"));
            let mut cmd = Command::new(opts.server.clone().unwrap_or_else(redis_server));
            cmd.arg(&conf_path)
                .args(&opts.cli)
                .current_dir(&home)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            set_limits(&mut cmd, &opts);
            if let Some(id) = opts.user {
                use std::os::unix::process::CommandExt;
                cmd.uid(id).gid(id);
            }
            let child = cmd.spawn().expect("redis-server runs (make test installs it)");
            let mut s = Server {
                child: Some(child),
                port,
                home: home.clone(),
                _tmp: None,
                opts: opts.clone(),
                report: false,
            };
            match s.wait_ready() {
                Ok(()) => return Ok(s),
                Err(log) => {
                    if let Some(mut c) = s.child.take() {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    if !log.contains("Address already in use") {
                        return Err(log);
                    }
                    last_log = log;
                }
            }
        }
        Err(last_log)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return Err(format!("exited with {status}\n{}", self.log()));
            }
            if let Ok(mut c) = self.try_conn() {
                // LOADING replies mean the server is up but not ready.
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("not ready after 20 s\n{}", self.log()))
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.home.join("redis.log")).unwrap_or_default()
    }

    fn try_conn(&self) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?;
        client.get_connection_with_timeout(Duration::from_secs(5))
    }

    /// A RESP2 connection.
    pub fn conn(&self) -> redis::Connection {
        self.try_conn()
            .unwrap_or_else(|e| panic!("connect: {e}\n{}", self.log()))
    }

    /// A RESP3 connection.
    pub fn conn3(&self) -> redis::Connection {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/?protocol=resp3", self.port)).unwrap();
        client.get_connection_with_timeout(Duration::from_secs(5)).unwrap()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// `SHUTDOWN SAVE`, then start again with the same home and options.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Kills the server with SIGKILL and starts it again.
    pub fn kill_and_restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `SHUTDOWN SAVE`, and waits for the process to end.
    pub fn stop(&mut self) {
        let mut c = self.conn();
        let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("SAVE").query(&mut c);
        self.wait_exit();
    }

    fn wait_exit(&mut self) {
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if c.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a stopped server again, with the same home and options.
    pub fn start_again(&mut self) {
        let log_before = self.log();
        let fresh = Server::spawn(self.home.clone(), self.opts.clone())
            .unwrap_or_else(|log| panic!("restart failed:\n{log_before}\n--- after restart:\n{log}"));
        self.port = fresh.port;
        self.child = fresh.into_child();
    }

    fn into_child(mut self) -> Option<Child> {
        self.child.take()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let Some(mut c) = self.child.take() else { return };
        let died = !matches!(c.try_wait(), Ok(None));
        let _ = c.kill();
        let _ = c.wait();
        if (std::thread::panicking() || died) && self.report {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "--- redis-server log ({}):\n{}", self.home.display(), self.log());
        }
    }
}

/// Sets the server's resource limits before it starts: a file size limit
/// (with SIGXFSZ ignored, so that a write past it fails with EFBIG) and an
/// open-file limit.
fn set_limits(cmd: &mut Command, opts: &Opts) {
    use std::os::unix::process::CommandExt;
    let (fsize, open_files, soft, inherited) = (
        opts.fsize_limit,
        opts.open_files,
        opts.soft_open_files,
        opts.inherited_fd,
    );
    let set = |resource, cur: u64, max: u64| {
        let l = libc::rlimit {
            rlim_cur: cur,
            rlim_max: max,
        };
        // SAFETY: a valid rlimit; async-signal-safe.
        if unsafe { libc::setrlimit(resource, &l) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: only async-signal-safe calls between fork and exec; an ignored
    // signal and resource limits both survive exec.
    unsafe {
        cmd.pre_exec(move || {
            // Only its own descriptors: one inherited from the test runner
            // would take a slot the server's limits count on.
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            // stdin is /dev/null; dup2 leaves the copy open across exec.
            if let Some(fd) = inherited {
                if libc::dup2(0, fd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(n) = fsize {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                set(libc::RLIMIT_FSIZE, n, n)?;
            }
            match open_files {
                Some(n) => set(libc::RLIMIT_NOFILE, soft.unwrap_or(n).min(n), n)?,
                // As high as allowed, as `make run` does: from a soft limit
                // of 1024, Redis would size its own to maxclients alone.
                None => {
                    let mut l = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
                        l.rlim_cur = l.rlim_max.min(1 << 20);
                        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
                    }
                }
            }
            Ok(())
        });
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The server under test: `REDIS_SERVER`, or Debian's Redis 7.0 on PATH.
pub fn redis_server() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| redis7_server())
}

/// Debian's Redis 7.0, for the tests that pair it with the server under test.
pub fn redis7_server() -> String {
    "redis-server".into()
}

/// Which server a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Redis7,
    /// Redis 8, whose Vector Sets own `VADD`.
    Redis8,
    Valkey,
}

/// The server's name and version, e.g. `Valkey 9.1.2`.
pub fn server_version(c: &mut redis::Connection) -> String {
    match flavour(c) {
        Flavour::Valkey => format!("Valkey {}", field(c, "server", "valkey_version")),
        _ => format!("Redis {}", field(c, "server", "redis_version")),
    }
}

pub fn flavour(c: &mut redis::Connection) -> Flavour {
    let text = match raw(c, &["INFO", "server"]).unwrap() {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        Value::VerbatimString { text, .. } => text,
        other => panic!("INFO server: {other:?}"),
    };
    if text.contains("valkey_version:") {
        return Flavour::Valkey;
    }
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .expect("redis_version in INFO server");
    match version.split('.').next().unwrap() {
        "7" => Flavour::Redis7,
        "8" => Flavour::Redis8,
        other => panic!("a server this project does not test: {version} ({other})"),
    }
}

/// The short names the module registered here, and those it found taken.
pub fn short_names(c: &mut redis::Connection) -> (Vec<String>, Vec<String>) {
    let list = |s: String| -> Vec<String> { s.split(',').filter(|n| !n.is_empty()).map(str::to_owned).collect() };
    (
        list(field(c, "mmap", "mmap_short_names")),
        list(field(c, "mmap", "mmap_short_names_taken")),
    )
}

/// Runs a command and returns the raw reply, or the error text.
pub fn raw(c: &mut redis::Connection, args: &[&str]) -> Result<Value, String> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query::<Value>(c).map_err(|e| error_text(&e))
}

/// Runs a command whose arguments may be any bytes; the reply, or the
/// server's error text. A broken connection is not a reply: it panics.
pub fn raw_bytes<A: AsRef<[u8]>>(c: &mut redis::Connection, args: &[A]) -> Result<Value, String> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0].as_ref()).expect("a command name in ASCII"));
    for a in &args[1..] {
        cmd.arg(a.as_ref());
    }
    match cmd.query::<Value>(c) {
        Ok(v) => Ok(v),
        Err(e) if e.code().is_some() => Err(error_text(&e)),
        Err(e) => panic!("{:?}: {e}", String::from_utf8_lossy(args[0].as_ref())),
    }
}

/// The error reply as the server sent it: code and message.
pub fn error_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

/// Runs a command that must fail and returns its error text.
pub fn err(c: &mut redis::Connection, args: &[&str]) -> String {
    match raw(c, args) {
        Ok(v) => panic!("{args:?} should fail, got {v:?}"),
        Err(e) => e,
    }
}

pub fn int(c: &mut redis::Connection, args: &[&str]) -> i64 {
    match raw(c, args) {
        Ok(Value::Int(n)) => n,
        other => panic!("{args:?}: expected an integer, got {other:?}"),
    }
}

/// A RESP2 bulk reply as text, `None` for nil.
pub fn bulk(c: &mut redis::Connection, args: &[&str]) -> Option<String> {
    match raw(c, args) {
        Ok(Value::Nil) => None,
        Ok(Value::BulkString(b)) => Some(String::from_utf8(b).unwrap()),
        other => panic!("{args:?}: expected a bulk string or nil, got {other:?}"),
    }
}

/// A RESP2 array of bulk strings or nils.
pub fn bulks(c: &mut redis::Connection, args: &[&str]) -> Vec<Option<String>> {
    match raw(c, args) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::Nil => None,
                Value::BulkString(b) => Some(String::from_utf8(b).unwrap()),
                other => panic!("{args:?}: unexpected element {other:?}"),
            })
            .collect(),
        other => panic!("{args:?}: expected an array, got {other:?}"),
    }
}

/// The values a file holds, read as plain bytes.
/// A file's values as their bit patterns: NaN payloads and -0 compare exactly.
pub fn file_bits(path: &Path) -> Vec<u64> {
    file_values(path).into_iter().map(f64::to_bits).collect()
}

/// The bits of a value reply in the module's RESP2 text: a decimal
/// double, `inf`, `nan`, `nan(0x...)`, any of them signed.
pub fn reply_bits(v: &Value) -> Option<u64> {
    let Value::BulkString(b) = v else { return None };
    let text = std::str::from_utf8(b).ok()?;
    let (sign, body) = match text.strip_prefix('-') {
        Some(b) => (1u64 << 63, b),
        None => (0, text),
    };
    if body == "nan" {
        return Some(sign | 0x7ff8_0000_0000_0000);
    }
    if let Some(hex) = body.strip_prefix("nan(0x").and_then(|h| h.strip_suffix(')')) {
        return Some(sign | 0x7ff0_0000_0000_0000 | u64::from_str_radix(hex, 16).ok()?);
    }
    text.parse::<f64>().ok().map(f64::to_bits)
}

pub fn file_values(path: &Path) -> Vec<f64> {
    let bytes = fs::read(path).unwrap();
    assert_eq!(bytes.len() % 8, 0, "{} has {} bytes", path.display(), bytes.len());
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Writes values as a headerless little-endian f64 file.
pub fn write_values(path: &Path, values: &[f64]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    fs::write(path, bytes).unwrap();
}

pub fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

/// `CONFIG GET pattern`: names and values, alternating.
pub fn config_get(c: &mut redis::Connection, pattern: &str) -> Vec<String> {
    redis::cmd("CONFIG").arg("GET").arg(pattern).query(c).unwrap()
}

/// The text of `INFO mmap`.
pub fn info(c: &mut redis::Connection) -> String {
    match raw(c, &["INFO", "mmap"]).unwrap() {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        Value::VerbatimString { text, .. } => text,
        other => panic!("INFO mmap: {other:?}"),
    }
}

/// Runs a program to success and returns its standard output.
pub fn stdout_of(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// One call of every command that reads or writes a bound key (all but MMAP),
/// by canonical name.
pub fn data_commands(key: &str) -> Vec<Vec<&str>> {
    vec![
        vec!["MMAP.GET", key, "0"],
        vec!["MMAP.MGET", key, "0"],
        vec!["MMAP.SET", key, "0", "1"],
        vec!["MMAP.ADD", key, "1"],
        vec!["MMAP.POP", key],
        vec!["MMAP.COUNT", key],
        vec!["MMAP.CLEAR", key],
        vec!["MMAP.RESIZE", key, "1"],
    ]
}

/// One field of `INFO <section>`, e.g. `field(c, "persistence", "aof_rewrite_in_progress")`.
pub fn field(c: &mut redis::Connection, section: &str, name: &str) -> String {
    let text = match raw(c, &["INFO", section]).unwrap() {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        Value::VerbatimString { text, .. } => text,
        other => panic!("INFO {section}: {other:?}"),
    };
    line_field(&text, name).unwrap_or_else(|| panic!("{name} missing in INFO {section}:\n{text}"))
}

/// The value of `name:value` among the lines of `INFO` or `CLUSTER INFO` text.
pub fn line_field(text: &str, name: &str) -> Option<String> {
    let prefix = format!("{name}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().to_string())
}

/// Waits until a replica's link to its master is up.
pub fn wait_link(r: &Server) {
    let mut c = r.conn();
    wait_for("the replication link", || {
        field(&mut c, "replication", "master_link_status") == "up"
    });
}

/// A server started with `opts` and `replicaof master`, once its link is up.
pub fn replica_of(master: &Server, mut opts: Opts) -> Server {
    opts.conf.push(format!("replicaof 127.0.0.1 {}", master.port));
    let r = Server::with(opts);
    wait_link(&r);
    r
}

/// Redis's CRC-64 (Jones, reflected), which ends every DUMP payload.
pub fn crc64(data: &[u8]) -> u64 {
    let mut crc = 0u64;
    for &b in data {
        crc ^= b as u64;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x95ac_9329_ac4b_c9b5
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Rewrites the CRC that ends a DUMP payload after its body was changed.
pub fn reseal(payload: &mut [u8]) {
    let body = payload.len() - 8;
    let crc = crc64(&payload[..body]);
    payload[body..].copy_from_slice(&crc.to_le_bytes());
}

/// Waits up to 20 s for `cond`; panics with `what` if it never holds.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An AOF with `appendfsync always`: Redis writes the AOF before it
/// replies. With `everysec` it may hold the AOF write back while a slow
/// fsync runs (up to two seconds), and a SIGKILL then loses acknowledged
/// writes of any kind.
pub fn aof_opts(preamble: &str) -> Opts {
    Opts {
        conf: vec![
            "appendonly yes".into(),
            "appendfsync always".into(),
            format!("aof-use-rdb-preamble {preamble}"),
        ],
        ..Opts::default()
    }
}

pub fn aof_server(preamble: &str) -> Server {
    Server::with(aof_opts(preamble))
}

/// Runs BGREWRITEAOF and waits until it has finished, successfully.
pub fn rewrite_aof(c: &mut redis::Connection) {
    raw(c, &["BGREWRITEAOF"]).unwrap();
    rewritten(c);
}

/// Waits until the AOF rewrite started (or scheduled) has finished, and
/// checks that it succeeded.
pub fn rewritten(c: &mut redis::Connection) {
    wait_for("the AOF rewrite", || {
        field(c, "persistence", "aof_rewrite_in_progress") == "0"
            && field(c, "persistence", "aof_rewrite_scheduled") == "0"
    });
    assert_eq!(field(c, "persistence", "aof_last_bgrewrite_status"), "ok");
}

/// `DEBUG DIGEST-VALUE key`: the digest of the key's content.
pub fn digest(c: &mut redis::Connection, key: &str) -> String {
    match raw(c, &["DEBUG", "DIGEST-VALUE", key]) {
        Ok(Value::Array(items)) if items.len() == 1 => match &items[0] {
            Value::SimpleString(d) => d.clone(),
            other => panic!("digest: {other:?}"),
        },
        other => panic!("DEBUG DIGEST-VALUE {key}: {other:?}"),
    }
}

/// A value of `INFO mmap` as a number, once no value waits for a
/// lazy-free thread: a key flushed asynchronously (Valkey's default) is
/// counted until its value is freed.
pub fn mmap_stat(c: &mut redis::Connection, name: &str) -> i64 {
    wait_for("lazy frees", || field(c, "memory", "lazyfree_pending_objects") == "0");
    field(c, "mmap", &format!("mmap_{name}")).parse().unwrap()
}

/// xorshift64*, for the soak test and the fuzzer: small, fast, and the
/// same on every machine, so a seed replays a run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// (kind, element size) for every element kind.
pub const KINDS: [(&str, usize); 12] = [
    ("int8", 1),
    ("uint8", 1),
    ("int16", 2),
    ("uint16", 2),
    ("int32", 4),
    ("uint32", 4),
    ("int64", 8),
    ("uint64", 8),
    ("float16", 2),
    ("bfloat16", 2),
    ("float32", 4),
    ("float64", 8),
];

/// `MMAP.INFO key` as field/value pairs, in order, from a RESP3 map or a
/// RESP2 flat array.
pub fn mmap_info(c: &mut redis::Connection, key: &str) -> Vec<(String, Value)> {
    fields(c, &["MMAP.INFO", key])
}

/// A map reply (`MMAP.INFO`, `MMAP.STATS`) as field/value pairs, in order,
/// from a RESP3 map or a RESP2 flat array.
pub fn fields(c: &mut redis::Connection, args: &[&str]) -> Vec<(String, Value)> {
    let pairs: Vec<(Value, Value)> = match raw(c, args).unwrap() {
        Value::Map(m) => m,
        Value::Array(a) => {
            assert!(a.len() % 2 == 0, "{a:?}");
            let mut it = a.into_iter();
            std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
        }
        other => panic!("{args:?}: {other:?}"),
    };
    pairs
        .into_iter()
        .map(|(k, v)| match k {
            Value::BulkString(b) => (String::from_utf8(b).unwrap(), v),
            Value::SimpleString(s) => (s, v),
            other => panic!("a field name {other:?}"),
        })
        .collect()
}

/// One `MMAP.INFO` field as text (integers and booleans too; nil as "").
pub fn info_text(c: &mut redis::Connection, key: &str, name: &str) -> String {
    let info = mmap_info(c, key);
    let v = &info
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("{name} missing in MMAP.INFO {key}: {info:?}"))
        .1;
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        Value::Boolean(b) => (*b as i64).to_string(),
        Value::Nil => String::new(),
        other => panic!("{name}: {other:?}"),
    }
}

/// A file under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Starts a stopped server from a fixture RDB written by an earlier
/// version, with the files its keys bind under its mmap.dir: `a` (a.f64),
/// `b` (sub/b.f64), `c` (c.f64, in db 2), and a plain string `plain`.
pub fn start_from_fixture_rdb(s: &mut Server, rdb: &str) {
    fs::copy(fixture(rdb), s.home.join("dump.rdb")).unwrap();
    fs::create_dir_all(s.data().join("sub")).unwrap();
    write_values(&s.data().join("a.f64"), &[1.5, -2.0, 3.25]);
    write_values(&s.data().join("sub/b.f64"), &[7.0, 8.0]);
    write_values(&s.data().join("c.f64"), &[0.0, 0.0, 42.0, 43.0]);
    s.start_again();
}

/// Every key of a fixture RDB, loaded (see `start_from_fixture_rdb`).
pub fn check_fixture_keys(c: &mut redis::Connection, rdb: &str) {
    assert_eq!(
        bulks(c, &["MMAP.MGET", "a", "0", "2"]),
        [Some("1.5".into()), Some("3.25".into())],
        "{rdb}"
    );
    assert_eq!(bulk(c, &["MMAP.GET", "b", "1"]).as_deref(), Some("8"), "{rdb}");
    raw(c, &["SELECT", "2"]).unwrap();
    assert_eq!(int(c, &["MMAP.COUNT", "c"]), 4, "{rdb}");
    raw(c, &["SELECT", "0"]).unwrap();
    assert_eq!(bulk(c, &["GET", "plain"]).as_deref(), Some("hello"), "{rdb}");
    assert_eq!(mmap_stat(c, "broken_keys"), 0, "{rdb}");
}
