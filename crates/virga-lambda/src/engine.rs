//! Runtime environments: one process per environment running the function's runtime
//! (Virga's Python or Node bootstrap, or a `provided` function's own `bootstrap`),
//! each with its own Runtime API endpoint on a loopback port, kept warm between
//! invocations and replaced when it dies, times out or runs out of memory.
//!
//! All processes, their Runtime API servers and output readers live on one dedicated
//! runtime thread, so a gateway thread busy with requests never delays them.

use crate::functions::Resolved;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot, watch};
use virga_core::{AwsError, AwsResult, Clock};

/// The error type of a runtime that cannot be started (no or a broken bootstrap).
const ENTRYPOINT_ERROR: &str = "Runtime.InvalidEntrypoint";
/// How long a runtime may take to initialise before its first `next` call.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle environments are stopped after this long.
const IDLE_TTL: Duration = Duration::from_secs(600);
/// A log line longer than this is cut (CloudWatch's event limit is 256 KiB).
const MAX_LINE: usize = 256 * 1024 - 26;
/// Output kept per invocation; more is counted and dropped.
const MAX_OUTPUT: usize = 8 * 1024 * 1024;
/// Reads of 64 KiB that collecting an invocation's output may make (what the runtime
/// wrote before answering is in the pipe already; this bounds a child process that
/// keeps writing).
const TAKE_CHUNKS: usize = 256;
/// LogType=Tail returns this much of the end of the log.
const TAIL_BYTES: usize = 4096;

const PYTHON_BOOTSTRAP: &str = include_str!("../runtimes/python/bootstrap.py");
const NODE_BOOTSTRAP: &str = include_str!("../runtimes/node/bootstrap.mjs");

/// How to start a runtime.
#[derive(Debug, Clone)]
pub enum Launch {
    /// An interpreter running Virga's bootstrap; `note` says what stood in for the
    /// requested version (written to the function's log).
    Python {
        exe: PathBuf,
        note: Option<String>,
    },
    Node {
        exe: PathBuf,
    },
    /// The function's own `bootstrap` executable.
    Provided,
}

fn which(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(cmd)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The real interpreter behind `cmd` (pyenv and similar shims are shell scripts that
/// need their own environment; the interpreter they select does not).
fn real_python(cmd: &str) -> Option<PathBuf> {
    static CACHE: Mutex<Option<HashMap<String, Option<PathBuf>>>> = Mutex::new(None);
    let mut g = CACHE.lock().ok()?;
    let cache = g.get_or_insert_with(HashMap::new);
    if let Some(hit) = cache.get(cmd) {
        return hit.clone();
    }
    let found = which(cmd).and_then(|p| {
        let out = std::process::Command::new(&p)
            .args(["-c", "import sys; print(sys.executable)"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let exe = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !exe.is_empty()).then(|| PathBuf::from(exe))
    });
    cache.insert(cmd.to_string(), found.clone());
    found
}

/// How this machine runs `runtime`, or why it cannot.
pub fn runtime_command(runtime: &str) -> Result<Launch, String> {
    if runtime.starts_with("python3") {
        if let Some(exe) = real_python(runtime) {
            return Ok(Launch::Python { exe, note: None });
        }
        return match real_python("python3") {
            Some(exe) => Ok(Launch::Python {
                note: Some(format!(
                    "Virga: {runtime} is not installed here; running on {}",
                    exe.display()
                )),
                exe,
            }),
            None => Err(format!(
                "Virga cannot run {runtime}: no python3 interpreter on this machine's PATH."
            )),
        };
    }
    if runtime.starts_with("nodejs") {
        return which("node")
            .map(|exe| Launch::Node { exe })
            .ok_or_else(|| format!("Virga cannot run {runtime}: no node on this machine's PATH."));
    }
    if runtime.starts_with("provided") {
        return Ok(Launch::Provided);
    }
    Err(format!(
        "Virga runs python3.x, nodejs and provided runtimes; {runtime} is not available on this machine."
    ))
}

/// Whether runtimes see their code at `/var/task` and layers at `/opt`, as on AWS:
/// each runtime gets its own mount namespace with those two bind-mounted (needs root
/// on Linux; probed once). Otherwise they see the directories where they are.
#[derive(Clone)]
struct Sandbox {
    available: bool,
    /// Mounted at `/opt` for functions without layers (AWS's is empty).
    empty_opt: PathBuf,
}

const TASK_MOUNT: &std::ffi::CStr = c"/var/task";
const OPT_MOUNT: &std::ffi::CStr = c"/opt";

/// In the forked child, before exec: a private mount namespace with the function's
/// code at /var/task and its layers at /opt.
fn isolate(task_root: &std::ffi::CStr, opt: &std::ffi::CStr) -> std::io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    let none = std::ptr::null::<libc::c_char>();
    // SAFETY: plain system calls on NUL-terminated strings that outlive them.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(
            none,
            c"/".as_ptr(),
            none,
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        for (from, to) in [(task_root, TASK_MOUNT), (opt, OPT_MOUNT)] {
            check(libc::mount(
                from.as_ptr(),
                to.as_ptr(),
                none,
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ))?;
        }
        check(libc::chdir(TASK_MOUNT.as_ptr()))
    }
}

fn cstring(p: &Path) -> Option<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).ok()
}

/// Whether paths of Virga's own (the work directory, an interpreter) would be hidden
/// by the mounts.
fn under_mounts(p: &Path) -> bool {
    p.starts_with("/var/task") || p.starts_with("/opt")
}

impl Sandbox {
    fn probe(work_dir: &Path) -> Sandbox {
        let empty_opt = work_dir.join("empty-opt");
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let available = root
            && !under_mounts(work_dir)
            && std::fs::create_dir_all(&empty_opt).is_ok()
            && std::fs::create_dir_all("/var/task").is_ok()
            && Path::new("/opt").is_dir()
            && cstring(&empty_opt).is_some_and(|opt| {
                let task = opt.clone();
                let mut cmd = std::process::Command::new("/bin/sh");
                cmd.args(["-c", "test -d /var/task"])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
                use std::os::unix::process::CommandExt;
                // SAFETY: isolate only makes system calls.
                unsafe {
                    cmd.pre_exec(move || isolate(&task, &opt));
                }
                cmd.status().is_ok_and(|s| s.success())
            });
        if !available {
            tracing::info!("lambda: runtimes see their code in Virga's work directory (no mount namespaces: /var/task and /opt are not used)");
        }
        Sandbox {
            available,
            empty_opt,
        }
    }
}

/// AWS's name of a runtime's version (`python:3.12.virga`, `nodejs:20.virga`).
pub fn runtime_version(runtime: &str) -> String {
    let split = runtime
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(runtime.len());
    let (family, version) = runtime.split_at(split);
    let version = version.trim_start_matches('.').trim_end_matches(".x");
    format!("{family}:{version}.virga")
}

/// The RuntimeVersionConfig ARN reported for a runtime.
pub fn runtime_version_arn(region: &str, runtime: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(runtime_version(runtime).as_bytes());
    format!("arn:aws:lambda:{region}::runtime:{}", hex::encode(digest))
}

/// What an environment runs: a function at one version.
pub struct Spec {
    pub region: String,
    pub name: String,
    pub version: String,
    /// Changes whenever code or configuration changes (environments are per revision).
    pub revision: String,
    pub runtime: String,
    pub handler: String,
    pub timeout_ms: u64,
    pub memory_mb: u64,
    pub env: Vec<(String, String)>,
    pub task_root: PathBuf,
    pub opt: Option<PathBuf>,
    pub log_group: String,
    /// LoggingConfig with LogFormat JSON: (format, application log level).
    pub log_format: Option<(String, String)>,
    pub credentials: (String, String),
}

impl Spec {
    pub fn from_resolved(
        r: &Resolved,
        region: &str,
        task_root: PathBuf,
        opt: Option<PathBuf>,
        credentials: (String, String),
    ) -> Spec {
        let c = &r.config;
        let env = c
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(|v| v.as_object())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Spec {
            region: region.to_string(),
            name: r.name.clone(),
            version: r.version.clone(),
            revision: c["RevisionId"].as_str().unwrap_or("").to_string(),
            runtime: c["Runtime"].as_str().unwrap_or("").to_string(),
            handler: c["Handler"].as_str().unwrap_or("").to_string(),
            timeout_ms: c["Timeout"].as_u64().unwrap_or(3) * 1000,
            memory_mb: c["MemorySize"].as_u64().unwrap_or(128),
            env,
            task_root,
            opt,
            log_group: c
                .get("LoggingConfig")
                .and_then(|l| l.get("LogGroup"))
                .and_then(|g| g.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| format!("/aws/lambda/{}", r.name)),
            log_format: c
                .get("LoggingConfig")
                .filter(|l| l.get("LogFormat").and_then(|f| f.as_str()) == Some("JSON"))
                .map(|l| {
                    (
                        "JSON".to_string(),
                        l.get("ApplicationLogLevel")
                            .and_then(|v| v.as_str())
                            .unwrap_or("INFO")
                            .to_string(),
                    )
                }),
            credentials,
        }
    }

    fn pool_key(&self) -> String {
        format!("{}\0{}\0{}", self.region, self.name, self.version)
    }
}

/// One invocation to run.
pub struct Request {
    pub request_id: String,
    pub payload: Bytes,
    pub invoked_arn: String,
    pub client_context: Option<String>,
    /// The function's concurrency limit (reserved, or the account's).
    pub limit: i64,
    pub log_tail: bool,
}

/// How an invocation ended.
#[derive(Debug)]
pub struct Outcome {
    pub payload: Bytes,
    /// The error type when the function failed (X-Amz-Function-Error: Unhandled).
    pub error: Option<String>,
    /// The last 4 KB of the invocation's log, base64 (LogType=Tail).
    pub log_tail: Option<String>,
}

/// A job handed to a runtime through `next`.
struct Job {
    request_id: String,
    payload: Bytes,
    invoked_arn: String,
    client_context: Option<String>,
    timeout_ms: u64,
    reply: oneshot::Sender<Reply>,
    /// When the runtime took the job, with the complete lines it wrote before (its init).
    picked: oneshot::Sender<(Instant, Vec<(i64, String)>)>,
}

enum Reply {
    Response(Bytes),
    Error(String, Bytes),
    TooLarge,
}

/// The Runtime API side of an environment.
struct Api {
    log: Arc<LogPipe>,
    clock: Arc<Clock>,
    jobs: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    current: Mutex<Option<(String, oneshot::Sender<Reply>)>>,
    init_error: Mutex<Option<(String, Bytes)>>,
}

/// Output of a runtime process, read from one pipe carrying stdout and stderr.
struct LogPipe {
    fd: AsyncFd<std::io::PipeReader>,
    buf: Mutex<LogBuf>,
}

#[derive(Default)]
struct LogBuf {
    partial: Vec<u8>,
    lines: Vec<(i64, String)>,
    kept: usize,
    dropped: usize,
}

impl LogBuf {
    fn push_line(&mut self, ts: i64, mut line: Vec<u8>) {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if self.kept + line.len() > MAX_OUTPUT {
            self.dropped += line.len();
            return;
        }
        line.truncate(MAX_LINE);
        // Runtimes write a multi-line record as one line with `\r` for its line
        // breaks (as AWS's do); CloudWatch shows it as one event with newlines.
        for c in line.iter_mut() {
            if *c == b'\r' {
                *c = b'\n';
            }
        }
        self.kept += line.len();
        self.lines
            .push((ts, String::from_utf8_lossy(&line).into_owned()));
    }

    fn take(&mut self, ts: i64) -> Vec<(i64, String)> {
        if !self.partial.is_empty() {
            let p = std::mem::take(&mut self.partial);
            self.push_line(ts, p);
        }
        if self.dropped > 0 {
            let n = self.dropped;
            self.lines
                .push((ts, format!("Virga: {n} bytes of output were dropped (more than {MAX_OUTPUT} bytes in one invocation)")));
        }
        self.kept = 0;
        self.dropped = 0;
        std::mem::take(&mut self.lines)
    }
}

/// What a read of the output pipe found.
#[derive(PartialEq)]
enum Drain {
    /// The runtime closed its output.
    Eof,
    /// Everything written so far was read.
    Empty,
    /// More is waiting (reads stop after a bound so a chatty runtime cannot hold the
    /// thread).
    More,
}

impl LogPipe {
    /// Reads what the pipe holds now, up to `max_chunks` reads of 64 KiB.
    fn read_available(&self, now_ms: i64, max_chunks: usize) -> Drain {
        let Ok(mut b) = self.buf.lock() else {
            return Drain::Eof;
        };
        let mut chunk = [0u8; 65536];
        for _ in 0..max_chunks {
            // SAFETY: reading into a local buffer from a file descriptor we own.
            let n = unsafe {
                libc::read(
                    self.fd.get_ref().as_raw_fd(),
                    chunk.as_mut_ptr().cast(),
                    chunk.len(),
                )
            };
            if n == 0 {
                return Drain::Eof;
            }
            if n < 0 {
                let e = std::io::Error::last_os_error();
                return match e.kind() {
                    std::io::ErrorKind::WouldBlock => Drain::Empty,
                    std::io::ErrorKind::Interrupted => Drain::More,
                    _ => Drain::Eof,
                };
            }
            let data = &chunk[..n as usize];
            let mut start = 0;
            for (i, &c) in data.iter().enumerate() {
                if c == b'\n' {
                    let mut line = std::mem::take(&mut b.partial);
                    line.extend_from_slice(&data[start..i]);
                    b.push_line(now_ms, line);
                    start = i + 1;
                }
            }
            b.partial.extend_from_slice(&data[start..]);
            if b.partial.len() > MAX_LINE {
                let line = std::mem::take(&mut b.partial);
                b.push_line(now_ms, line);
            }
        }
        Drain::More
    }

    /// The complete lines written so far (a partial one stays for later), outside any
    /// invocation's output budget.
    fn take_complete(&self, now_ms: i64) -> Vec<(i64, String)> {
        self.read_available(now_ms, TAKE_CHUNKS);
        self.buf
            .lock()
            .map(|mut b| {
                b.kept = 0;
                std::mem::take(&mut b.lines)
            })
            .unwrap_or_default()
    }

    fn take(&self, now_ms: i64) -> Vec<(i64, String)> {
        self.read_available(now_ms, TAKE_CHUNKS);
        self.buf
            .lock()
            .map(|mut b| b.take(now_ms))
            .unwrap_or_default()
    }
}

/// A running runtime process.
struct Env {
    stream: String,
    pid: i32,
    jobs: mpsc::Sender<Job>,
    api: Arc<Api>,
    log: Arc<LogPipe>,
    exit: watch::Receiver<Option<String>>,
    spawned: Instant,
    initialized: AtomicBool,
    server: tokio::task::AbortHandle,
    /// Peak resident memory seen (`VmHWM`), kept for when the process is gone.
    peak_kib: std::sync::atomic::AtomicU64,
}

impl Env {
    fn note_peak(&self) {
        if let Some(k) = proc_kib(self.pid, "VmHWM:") {
            self.peak_kib.fetch_max(k, Ordering::Relaxed);
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // A reaped process's id may already belong to another runtime's group.
        if self.exit.borrow().is_none() {
            kill_group(self.pid);
        }
        self.server.abort();
    }
}

fn kill_group(pid: i32) {
    if pid > 0 {
        // SAFETY: signalling a process group we created.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// Resident memory (`VmRSS`) or its peak (`VmHWM`) of a process, in KiB.
fn proc_kib(pid: i32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

struct Pool {
    revision: String,
    idle: Mutex<Vec<(Arc<Env>, Instant)>>,
    retired: AtomicBool,
}

impl Pool {
    /// Stops the idle environments; busy ones stop when their invocation ends.
    fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

pub struct Engine {
    rt: ManuallyDrop<tokio::runtime::Runtime>,
    runtime_dir: PathBuf,
    /// Probed when the first runtime starts (a fork and two mounts Virga's start-up
    /// need not pay for).
    sandbox: std::sync::OnceLock<Sandbox>,
    work_dir: PathBuf,
    clock: Arc<Clock>,
    logs: Arc<virga_logs::Logs>,
    pools: Mutex<HashMap<String, Arc<Pool>>>,
    inflight: Arc<Mutex<HashMap<(String, String), i64>>>,
}

/// A concurrency slot of a function, released on drop.
struct Slot {
    key: (String, String),
    inflight: Arc<Mutex<HashMap<(String, String), i64>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.inflight.lock() {
            if let Some(n) = m.get_mut(&self.key) {
                *n -= 1;
                if *n <= 0 {
                    m.remove(&self.key);
                }
            }
        }
    }
}

fn write_if_changed(path: &Path, content: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(content) {
        return Ok(());
    }
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(tmp, path)
}

impl Engine {
    pub fn new(
        work_dir: &Path,
        clock: Arc<Clock>,
        logs: Arc<virga_logs::Logs>,
    ) -> AwsResult<Engine> {
        let runtime_dir = work_dir.join("runtimes");
        let io = |e: std::io::Error| AwsError::internal(format!("lambda runtimes: {e}"));
        write_if_changed(&runtime_dir.join("python/bootstrap.py"), PYTHON_BOOTSTRAP).map_err(io)?;
        write_if_changed(&runtime_dir.join("node/bootstrap.mjs"), NODE_BOOTSTRAP).map_err(io)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("virga-lambda")
            .enable_all()
            .build()
            .map_err(io)?;
        let engine = Engine {
            rt: ManuallyDrop::new(rt),
            runtime_dir,
            sandbox: std::sync::OnceLock::new(),
            work_dir: work_dir.to_path_buf(),
            clock,
            logs,
            pools: Mutex::new(HashMap::new()),
            inflight: Arc::new(Mutex::new(HashMap::new())),
        };
        Ok(engine)
    }

    /// Spawns background work on the engine's runtime.
    pub fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.rt.spawn(f)
    }

    /// Stops idle environments that have not been used for a while.
    pub fn reap_idle(&self) {
        let pools: Vec<Arc<Pool>> = self
            .pools
            .lock()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default();
        for p in pools {
            if let Ok(mut idle) = p.idle.lock() {
                idle.retain(|(_, since)| since.elapsed() < IDLE_TTL);
            }
        }
    }

    /// Stops the environments of a function (all versions when `version` is None);
    /// busy ones stop when their invocation ends.
    pub fn retire(&self, region: &str, name: &str, version: Option<&str>) {
        let prefix = match version {
            Some(v) => format!("{region}\0{name}\0{v}"),
            None => format!("{region}\0{name}\0"),
        };
        let removed: Vec<Arc<Pool>> = match self.pools.lock() {
            Ok(mut pools) => {
                let keys: Vec<String> = pools
                    .keys()
                    .filter(|k| {
                        if version.is_some() {
                            **k == prefix
                        } else {
                            k.starts_with(&prefix)
                        }
                    })
                    .cloned()
                    .collect();
                keys.iter().filter_map(|k| pools.remove(k)).collect()
            }
            Err(_) => Vec::new(),
        };
        for p in removed {
            p.retire();
        }
    }

    pub fn shutdown_all(&self) {
        let all: Vec<Arc<Pool>> = self
            .pools
            .lock()
            .map(|mut p| p.drain().map(|(_, v)| v).collect())
            .unwrap_or_default();
        for p in all {
            p.retire();
        }
    }

    /// Number of environments running (idle ones; busy ones are counted by slots).
    pub fn idle_count(&self) -> usize {
        self.pools
            .lock()
            .map(|p| {
                p.values()
                    .map(|x| x.idle.lock().map(|i| i.len()).unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    }

    fn slot(&self, spec: &Spec, limit: i64) -> AwsResult<Slot> {
        let key = (spec.region.clone(), spec.name.clone());
        let mut m = self
            .inflight
            .lock()
            .map_err(|_| AwsError::internal("concurrency table poisoned"))?;
        let n = m.entry(key.clone()).or_insert(0);
        if *n >= limit {
            let reason = if limit < crate::functions::ACCOUNT_CONCURRENCY {
                "ReservedFunctionConcurrentInvocationLimitExceeded"
            } else {
                "ConcurrentInvocationLimitExceeded"
            };
            if *n == 0 {
                m.remove(&key);
            }
            return Err(
                AwsError::new(429, "TooManyRequestsException", "Rate Exceeded.")
                    .with("Reason", reason)
                    .header("Retry-After", "1"),
            );
        }
        *n += 1;
        Ok(Slot {
            key,
            inflight: self.inflight.clone(),
        })
    }

    fn pool(&self, spec: &Spec) -> Arc<Pool> {
        let key = spec.pool_key();
        let Ok(mut pools) = self.pools.lock() else {
            return Arc::new(Pool {
                revision: spec.revision.clone(),
                idle: Mutex::new(Vec::new()),
                retired: AtomicBool::new(true),
            });
        };
        if let Some(p) = pools.get(&key) {
            if p.revision == spec.revision {
                return p.clone();
            }
            p.retire();
        }
        let p = Arc::new(Pool {
            revision: spec.revision.clone(),
            idle: Mutex::new(Vec::new()),
            retired: AtomicBool::new(false),
        });
        pools.insert(key, p.clone());
        p
    }

    /// Runs one invocation: takes a concurrency slot (or answers
    /// TooManyRequestsException), a warm environment or a new one, and returns how
    /// it ended once its log is written.
    pub async fn invoke(&self, spec: Arc<Spec>, req: Request) -> AwsResult<Outcome> {
        let _slot = self.slot(&spec, req.limit)?;
        let pool = self.pool(&spec);
        let mut warm = loop {
            let e = pool.idle.lock().ok().and_then(|mut i| i.pop());
            match e {
                Some((env, _)) if env.exit.borrow().is_none() => break Some(env),
                Some(_) => continue,
                None => break None,
            }
        };
        loop {
            let env = match warm.take() {
                Some(e) => e,
                None => match self.start(&spec, &req.request_id).await? {
                    Ok(env) => env,
                    Err(outcome) => return Ok(outcome),
                },
            };
            let was_warm = env.initialized.load(Ordering::SeqCst);
            match self.run(&spec, &env, &req).await {
                // A warm environment that died while idle (a runtime exits after
                // reporting an uncaught error): the invocation runs on a fresh one.
                None if was_warm => continue,
                None => return Err(AwsError::internal("runtime did not start")),
                Some((outcome, usable)) => {
                    if usable && !pool.retired.load(Ordering::SeqCst) {
                        if let Ok(mut idle) = pool.idle.lock() {
                            idle.push((env, Instant::now()));
                        }
                    }
                    return Ok(outcome);
                }
            }
        }
    }

    /// Starts a new environment; Err(outcome) when the runtime cannot be started
    /// (no bootstrap, or one that cannot be executed): the invocation then fails as a
    /// function error, as on AWS.
    async fn start(
        &self,
        spec: &Arc<Spec>,
        request_id: &str,
    ) -> AwsResult<Result<Arc<Env>, Outcome>> {
        let spec = spec.clone();
        let runtime_dir = self.runtime_dir.clone();
        let clock = self.clock.clone();
        let sandbox = self
            .sandbox
            .get_or_init(|| Sandbox::probe(&self.work_dir))
            .clone();
        let started = self
            .rt
            .spawn(async move { start_env(&spec, &runtime_dir, &sandbox, &clock).await })
            .await
            .map_err(|e| AwsError::internal(format!("runtime start: {e}")))?;
        match started {
            Ok(env) => Ok(Ok(Arc::new(env))),
            Err(e) if e.code == ENTRYPOINT_ERROR => {
                Ok(Err(failure(request_id, ENTRYPOINT_ERROR, &e.message)))
            }
            Err(e) => Err(e),
        }
    }

    /// Runs one invocation on `env`: (how it ended, whether the environment can be
    /// reused), or None when a warm environment had died before taking the job.
    async fn run(&self, spec: &Spec, env: &Arc<Env>, req: &Request) -> Option<(Outcome, bool)> {
        let (reply_tx, mut reply_rx) = oneshot::channel();
        let (picked_tx, picked_rx) = oneshot::channel();
        let cold = !env.initialized.swap(true, Ordering::SeqCst);
        let id = req.request_id.clone();
        let job = Job {
            request_id: req.request_id.clone(),
            payload: req.payload.clone(),
            invoked_arn: req.invoked_arn.clone(),
            client_context: req.client_context.clone(),
            timeout_ms: spec.timeout_ms,
            reply: reply_tx,
            picked: picked_tx,
        };
        let mut exit = env.exit.clone();
        let mut events: Vec<(i64, String)> = Vec::new();
        let now_ms = || self.clock.now_millis();
        if env.jobs.send(job).await.is_err() {
            if !cold {
                return None;
            }
            return Some((failure(&id, "Runtime.ExitError", "Runtime exited"), false));
        }
        // A cold start: wait for the runtime's first `next` (its init).
        let picked = tokio::select! {
            biased;
            p = picked_rx => p.ok(),
            _ = exited(&mut exit) => None,
            _ = tokio::time::sleep(INIT_TIMEOUT) => None,
        };
        let init_ms = cold.then(|| env.spawned.elapsed().as_secs_f64() * 1000.0);
        let Some((started, init_lines)) = picked else {
            if !cold && exit.borrow().is_some() {
                return None;
            }
            events.extend(env.log.take(now_ms()));
            kill_group(env.pid);
            let _ = tokio::time::timeout(Duration::from_secs(2), exited(&mut exit)).await;
            events.extend(env.log.take(now_ms()));
            let init_error = env.api.init_error.lock().ok().and_then(|mut e| e.take());
            let outcome = match init_error {
                Some((kind, body)) => Outcome {
                    payload: body,
                    error: Some(kind),
                    log_tail: None,
                },
                None => match exit.borrow().clone() {
                    Some(status) => failure(
                        &id,
                        "Runtime.ExitError",
                        &format!("Runtime exited with error: {status}"),
                    ),
                    None => failure(
                        &id,
                        "Sandbox.Timedout",
                        "Init timed out after 10.00 seconds",
                    ),
                },
            };
            events.push(start_line(spec, &id, now_ms()));
            if let Some(m) = outcome_line(&outcome) {
                events.push((now_ms(), m));
            }
            let outcome = self.finish(spec, env, req, events, outcome, 0.0, init_ms);
            return Some((outcome, false));
        };
        events.extend(init_lines);
        events.push(start_line(spec, &id, now_ms()));
        let deadline = started + Duration::from_millis(spec.timeout_ms);
        // (The first check after 100 ms: most invocations are over by then, and reading
        // /proc costs more than the rest of a warm invocation's bookkeeping.)
        let mut memory_check = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_millis(100),
            Duration::from_millis(100),
        );
        let (outcome, usable) = loop {
            tokio::select! {
                // A reply that is in wins over a deadline that passed meanwhile.
                biased;
                r = &mut reply_rx => {
                    break match r {
                        Ok(Reply::Response(b)) => (Outcome { payload: b, error: None, log_tail: None }, true),
                        Ok(Reply::Error(kind, b)) => (Outcome { payload: b, error: Some(kind), log_tail: None }, true),
                        Ok(Reply::TooLarge) => (Outcome {
                            payload: Bytes::from(json!({
                                "errorMessage": format!("Response payload size exceeded maximum allowed payload size ({} bytes).", crate::SYNC_PAYLOAD_LIMIT + 100),
                                "errorType": "Function.ResponseSizeTooLarge",
                            }).to_string()),
                            error: Some("Function.ResponseSizeTooLarge".into()),
                            log_tail: None,
                        }, true),
                        Err(_) => (failure(&id, "Runtime.ExitError", "Runtime exited"), false),
                    };
                }
                _ = exited(&mut exit) => {
                    let status = exit.borrow().clone().unwrap_or_default();
                    break (failure(&id, "Runtime.ExitError", &format!("Runtime exited with error: {status}")), false);
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    env.note_peak();
                    kill_group(env.pid);
                    let secs = spec.timeout_ms as f64 / 1000.0;
                    break (failure(&id, "Sandbox.Timedout", &format!("Task timed out after {secs:.2} seconds")), false);
                }
                _ = memory_check.tick() => {
                    env.note_peak();
                    if proc_kib(env.pid, "VmRSS:").is_some_and(|k| k > spec.memory_mb * 1024) {
                        kill_group(env.pid);
                        break (failure(&id, "Runtime.OutOfMemory", "Runtime exited with error: signal: killed"), false);
                    }
                }
            }
        };
        let duration = started.elapsed().as_secs_f64() * 1000.0;
        if !usable {
            // Let the reader collect what the dying process wrote.
            let _ = tokio::time::timeout(Duration::from_millis(500), exited(&mut exit)).await;
        }
        events.extend(env.log.take(now_ms()));
        if !usable {
            if let Some(m) = outcome_line(&outcome) {
                events.push((now_ms(), m));
            }
        }
        let outcome = self.finish(spec, env, req, events, outcome, duration, init_ms);
        Some((outcome, usable))
    }

    /// Appends END and REPORT, writes the log, fills in the tail.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        spec: &Spec,
        env: &Env,
        req: &Request,
        mut events: Vec<(i64, String)>,
        mut outcome: Outcome,
        duration_ms: f64,
        init_ms: Option<f64>,
    ) -> Outcome {
        let id = &req.request_id;
        let now = self.clock.now_millis();
        env.note_peak();
        let max_used = env.peak_kib.load(Ordering::Relaxed).div_ceil(1024);
        let json_format = spec.log_format.is_some();
        let status = match outcome.error.as_deref() {
            None => "success",
            Some("Sandbox.Timedout") => "timeout",
            Some(_) => "error",
        };
        events.push((
            now,
            platform_line(
                json_format,
                now,
                "platform.runtimeDone",
                format!("END RequestId: {id}"),
                json!({"requestId": id, "status": status}),
            ),
        ));
        let mut report = format!(
            "REPORT RequestId: {id}\tDuration: {duration_ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {max_used} MB\t",
            duration_ms.ceil().max(1.0) as u64,
            spec.memory_mb,
        );
        if let Some(i) = init_ms {
            report.push_str(&format!("Init Duration: {i:.2} ms\t"));
        }
        if outcome.error.as_deref() == Some("Sandbox.Timedout") {
            report.push_str("Status: timeout");
        }
        let mut metrics = json!({
            "durationMs": (duration_ms * 100.0).round() / 100.0,
            "billedDurationMs": duration_ms.ceil().max(1.0) as u64,
            "memorySizeMB": spec.memory_mb,
            "maxMemoryUsedMB": max_used,
        });
        if let Some(i) = init_ms {
            metrics["initDurationMs"] = json!((i * 100.0).round() / 100.0);
        }
        let report = platform_line(
            json_format,
            now,
            "platform.report",
            report,
            json!({"requestId": id, "metrics": metrics, "status": status}),
        );
        events.push((now, report));
        if req.log_tail {
            let mut text = String::new();
            for (_, m) in &events {
                text.push_str(m);
                text.push('\n');
            }
            let mut cut = text.len().saturating_sub(TAIL_BYTES);
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            use base64::Engine as _;
            outcome.log_tail =
                Some(base64::engine::general_purpose::STANDARD.encode(&text.as_bytes()[cut..]));
        }
        if let Err(e) = self
            .logs
            .append(&spec.region, &spec.log_group, &env.stream, &events)
        {
            tracing::warn!("lambda log write for {}: {}", spec.name, e.message);
        }
        outcome
    }
}

/// A platform log line (INIT_START, START, END, REPORT): its text form, or with
/// LogFormat JSON the `platform.*` record AWS writes instead.
fn platform_line(
    json_format: bool,
    now_ms: i64,
    kind: &str,
    text: String,
    record: serde_json::Value,
) -> String {
    if !json_format {
        return text;
    }
    let time = virga_protocol::time_fmt::iso8601(now_ms as f64 / 1000.0);
    json!({"time": time, "type": kind, "record": record}).to_string()
}

/// The START line of an invocation.
fn start_line(spec: &Spec, id: &str, now_ms: i64) -> (i64, String) {
    let line = platform_line(
        spec.log_format.is_some(),
        now_ms,
        "platform.start",
        format!("START RequestId: {id} Version: {}", spec.version),
        json!({"requestId": id, "version": spec.version}),
    );
    (now_ms, line)
}

/// The log line AWS writes for a failure Virga detects itself.
fn outcome_line(o: &Outcome) -> Option<String> {
    if !matches!(
        o.error.as_deref(),
        Some("Sandbox.Timedout" | "Runtime.ExitError" | "Runtime.OutOfMemory")
    ) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&o.payload).ok()?;
    Some(format!(
        "{}\n{}",
        v["errorMessage"].as_str()?,
        v["errorType"].as_str().unwrap_or("")
    ))
}

fn failure(id: &str, kind: &str, what: &str) -> Outcome {
    Outcome {
        payload: Bytes::from(
            json!({"errorType": kind, "errorMessage": format!("RequestId: {id} Error: {what}")})
                .to_string(),
        ),
        error: Some(kind.to_string()),
        log_tail: None,
    }
}

async fn exited(rx: &mut watch::Receiver<Option<String>>) {
    while rx.borrow().is_none() {
        if rx.changed().await.is_err() {
            // The watcher is gone: never resolve (the other branches decide).
            std::future::pending::<()>().await;
        }
    }
}

fn stream_name(clock: &Clock, version: &str) -> String {
    let day = virga_protocol::time_fmt::iso8601(clock.now_secs_f64());
    let date = day.get(..10).unwrap_or("1970-01-01").replace('-', "/");
    format!("{date}/[{version}]{}", uuid::Uuid::new_v4().simple())
}

/// Starts a runtime process with its Runtime API endpoint, output reader and exit
/// watcher. Runs on the engine's runtime.
async fn start_env(
    spec: &Spec,
    runtime_dir: &Path,
    sandbox: &Sandbox,
    clock: &Arc<Clock>,
) -> AwsResult<Env> {
    let io = |what: &str, e: std::io::Error| AwsError::internal(format!("{what}: {e}"));
    let launch = runtime_command(&spec.runtime).map_err(|reason| {
        AwsError::new(409, "ResourceConflictException", format!("The operation cannot be performed at this time. The function is currently in the following state: Failed ({reason})"))
    })?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| io("runtime api", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| io("runtime api", e))?
        .port();
    let stream = stream_name(clock, &spec.version);
    let interpreter = match &launch {
        Launch::Python { exe, .. } | Launch::Node { exe } => Some(exe.as_path()),
        Launch::Provided => None,
    };
    let isolated = sandbox.available
        && !interpreter.is_some_and(|p| {
            under_mounts(p) || std::fs::canonicalize(p).is_ok_and(|c| under_mounts(&c))
        });
    // The paths the function sees, and where they are on this machine.
    let host_opt = match (&spec.opt, isolated) {
        (Some(o), _) => Some(o.clone()),
        (None, true) => Some(sandbox.empty_opt.clone()),
        (None, false) => None,
    };
    let (task_root, opt_s) = if isolated {
        ("/var/task".to_string(), Some("/opt".to_string()))
    } else {
        (
            spec.task_root.display().to_string(),
            host_opt.as_ref().map(|p| p.display().to_string()),
        )
    };
    let mut note = None;
    let (program, args): (PathBuf, Vec<String>) = match &launch {
        Launch::Python { exe, note: n } => {
            note = n.clone();
            (
                exe.clone(),
                vec![runtime_dir
                    .join("python/bootstrap.py")
                    .display()
                    .to_string()],
            )
        }
        Launch::Node { exe } => (
            exe.clone(),
            vec![runtime_dir.join("node/bootstrap.mjs").display().to_string()],
        ),
        Launch::Provided => {
            // (on this machine, as the function sees it)
            let mut candidates = vec![(
                spec.task_root.join("bootstrap"),
                format!("{task_root}/bootstrap"),
            )];
            if let (Some(h), Some(o)) = (&host_opt, &opt_s) {
                candidates.push((h.join("bootstrap"), format!("{o}/bootstrap")));
            }
            match candidates.iter().find(|(p, _)| p.is_file()) {
                Some((host, seen)) => (
                    if isolated {
                        PathBuf::from(seen)
                    } else {
                        host.clone()
                    },
                    Vec::new(),
                ),
                None => {
                    return Err(AwsError::new(
                        502,
                        ENTRYPOINT_ERROR,
                        format!(
                            "Couldn't find valid bootstrap(s): [{}]",
                            candidates
                                .iter()
                                .map(|(_, seen)| seen.as_str())
                                .collect::<Vec<_>>()
                                .join(" ")
                        ),
                    ))
                }
            }
        }
    };
    let host_path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            match &opt_s {
                Some(o) => format!("{o}/bin:{host_path}"),
                None => host_path,
            },
        ),
        ("LANG".into(), "en_US.UTF-8".into()),
        ("TZ".into(), ":UTC".into()),
        (
            "LD_LIBRARY_PATH".into(),
            match &opt_s {
                Some(o) => format!("{task_root}/lib:{o}/lib"),
                None => format!("{task_root}/lib"),
            },
        ),
        ("_HANDLER".into(), spec.handler.clone()),
        ("LAMBDA_TASK_ROOT".into(), task_root.clone()),
        (
            "LAMBDA_RUNTIME_DIR".into(),
            runtime_dir.display().to_string(),
        ),
        ("AWS_LAMBDA_RUNTIME_API".into(), format!("127.0.0.1:{port}")),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), spec.name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), spec.version.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
            spec.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_LOG_GROUP_NAME".into(), spec.log_group.clone()),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), stream.clone()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
        ("AWS_REGION".into(), spec.region.clone()),
        ("AWS_DEFAULT_REGION".into(), spec.region.clone()),
        (
            "AWS_EXECUTION_ENV".into(),
            format!("AWS_Lambda_{}", spec.runtime),
        ),
        ("AWS_ACCESS_KEY_ID".into(), spec.credentials.0.clone()),
        ("AWS_SECRET_ACCESS_KEY".into(), spec.credentials.1.clone()),
        // AWS hands a function its role's temporary credentials, token included;
        // code that reads it finds one. Virga checks no session tokens.
        ("AWS_SESSION_TOKEN".into(), "virga-session-token".into()),
        (
            "AWS_ENDPOINT_URL".into(),
            format!("http://{}", endpoint_addr()),
        ),
        ("PYTHONUNBUFFERED".into(), "1".into()),
    ];
    if let Some(o) = &opt_s {
        env.push(("VIRGA_LAMBDA_OPT".into(), o.clone()));
        env.push((
            "NODE_PATH".into(),
            format!("{o}/nodejs/node_modules:{o}/nodejs/node20/node_modules:{o}/nodejs/node22/node_modules:{o}/nodejs/node18/node_modules"),
        ));
    }
    if let Some((format, level)) = &spec.log_format {
        // What AWS sets for the JSON log format; the runtimes apply the level.
        env.push(("AWS_LAMBDA_LOG_FORMAT".into(), format.clone()));
        env.push(("AWS_LAMBDA_LOG_LEVEL".into(), level.clone()));
    }
    env.extend(spec.env.iter().cloned());

    let (reader, writer) = std::io::pipe().map_err(|e| io("pipe", e))?;
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fd = reader.as_raw_fd();
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let writer2 = writer.try_clone().map_err(|e| io("pipe", e))?;
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(&args)
        .env_clear()
        .envs(env)
        .current_dir(&spec.task_root)
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .process_group(0)
        .kill_on_drop(true);
    if isolated {
        let task = cstring(&spec.task_root);
        let opt = host_opt.as_deref().and_then(cstring);
        if let (Some(task), Some(opt)) = (task, opt) {
            // SAFETY: isolate only makes system calls.
            unsafe {
                cmd.pre_exec(move || isolate(&task, &opt));
            }
        }
    }
    // SAFETY: prctl is async-signal-safe; the child dies with Virga instead of
    // lingering as an orphan.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let spawned = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        AwsError::new(
            502,
            ENTRYPOINT_ERROR,
            format!("fork/exec {}: {e}", program.display()),
        )
    })?;
    // The parent's copies of the pipe's write end went with `cmd`; dropping it
    // lets the reader see end-of-file when the runtime exits.
    drop(cmd);
    let pid = child.id().map(|p| p as i32).unwrap_or(0);
    let log = Arc::new(LogPipe {
        // SAFETY: the PipeReader owns its descriptor for as long as the AsyncFd holds it.
        fd: unsafe { AsyncFd::register(reader) }
            .map_err(|e| io("pipe", std::io::Error::from(e)))?,
        buf: Mutex::new(LogBuf::default()),
    });
    if let Ok(mut b) = log.buf.lock() {
        let now = clock.now_millis();
        let (version, arn) = (
            runtime_version(&spec.runtime),
            runtime_version_arn(&spec.region, &spec.runtime),
        );
        b.lines.push((
            now,
            platform_line(
                spec.log_format.is_some(),
                now,
                "platform.initStart",
                format!("INIT_START Runtime Version: {version}\tRuntime Version ARN: {arn}"),
                json!({
                    "initializationType": "on-demand",
                    "phase": "init",
                    "runtimeVersion": version,
                    "runtimeVersionArn": arn,
                    "functionName": spec.name,
                    "functionVersion": spec.version,
                }),
            ),
        ));
        if let Some(n) = note {
            b.lines.push((clock.now_millis(), n));
        }
    }
    {
        let log = log.clone();
        let clock = clock.clone();
        tokio::spawn(async move {
            loop {
                let Ok(mut guard) = log.fd.readable().await else {
                    break;
                };
                match log.read_available(clock.now_millis(), 16) {
                    Drain::Eof => break,
                    Drain::Empty => guard.clear_ready(),
                    // Still readable: let the thread's other tasks run first.
                    Drain::More => {
                        drop(guard);
                        tokio::task::yield_now().await;
                    }
                }
            }
        });
    }
    let (exit_tx, exit_rx) = watch::channel(None);
    tokio::spawn(async move {
        let status = match child.wait().await {
            Ok(s) => describe_exit(s),
            Err(e) => format!("wait failed: {e}"),
        };
        let _ = exit_tx.send(Some(status));
    });
    let (jobs_tx, jobs_rx) = mpsc::channel(1);
    let api = Arc::new(Api {
        log: log.clone(),
        clock: clock.clone(),
        jobs: tokio::sync::Mutex::new(jobs_rx),
        current: Mutex::new(None),
        init_error: Mutex::new(None),
    });
    let server = {
        let api = api.clone();
        tokio::spawn(async move { serve_runtime_api(listener, api).await }).abort_handle()
    };
    Ok(Env {
        stream,
        pid,
        jobs: jobs_tx,
        api,
        log,
        exit: exit_rx,
        spawned,
        initialized: AtomicBool::new(false),
        server,
        peak_kib: Default::default(),
    })
}

/// `host:port` functions use to reach Virga (a wildcard listen address is reached
/// on loopback).
fn endpoint_addr() -> String {
    let a = virga_core::service::listen_addr();
    match a.rsplit_once(':') {
        Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("127.0.0.1:{port}"),
        _ => a,
    }
}

fn describe_exit(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!(
            "signal: {}",
            match sig {
                libc::SIGKILL => "killed".to_string(),
                libc::SIGSEGV => "segmentation fault".to_string(),
                libc::SIGABRT => "aborted".to_string(),
                libc::SIGTERM => "terminated".to_string(),
                n => n.to_string(),
            }
        ),
        _ => "unknown".into(),
    }
}

async fn serve_runtime_api(listener: tokio::net::TcpListener, api: Arc<Api>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, say: wait instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let api = api.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                let api = api.clone();
                async move { Ok::<_, std::convert::Infallible>(runtime_api(&api, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

type ApiResponse = http::Response<http_body_util::Full<Bytes>>;

fn api_response(status: u16, body: serde_json::Value) -> ApiResponse {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| http::Response::new(http_body_util::Full::new(Bytes::new())))
}

/// The Lambda Runtime API (2018-06-01) of one environment.
async fn runtime_api(api: &Api, req: http::Request<Incoming>) -> ApiResponse {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return api_response(
            404,
            json!({"errorMessage": "not found", "errorType": "InvalidRequest"}),
        );
    };
    if method == http::Method::GET && rest == "invocation/next" {
        let job = {
            let mut jobs = api.jobs.lock().await;
            jobs.recv().await
        };
        let Some(job) = job else {
            return std::future::pending().await;
        };
        let deadline = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
            + job.timeout_ms;
        let init_lines = api.log.take_complete(api.clock.now_millis());
        let _ = job.picked.send((Instant::now(), init_lines));
        if let Ok(mut c) = api.current.lock() {
            *c = Some((job.request_id.clone(), job.reply));
        }
        let trace = format!(
            "Root=1-{:08x}-{};Parent={};Sampled=0",
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            &uuid::Uuid::new_v4().simple().to_string()[..24],
            &uuid::Uuid::new_v4().simple().to_string()[..16],
        );
        let mut b = http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", &job.request_id)
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header("lambda-runtime-invoked-function-arn", &job.invoked_arn)
            .header("lambda-runtime-trace-id", trace);
        if let Some(cc) = &job.client_context {
            b = b.header("lambda-runtime-client-context", cc);
        }
        return b
            .body(http_body_util::Full::new(job.payload))
            .unwrap_or_else(|_| http::Response::new(http_body_util::Full::new(Bytes::new())));
    }
    if method != http::Method::POST {
        return api_response(
            405,
            json!({"errorMessage": "method not allowed", "errorType": "InvalidRequest"}),
        );
    }
    let error_type = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match http_body_util::Limited::new(req.into_body(), crate::SYNC_PAYLOAD_LIMIT + 100)
        .collect()
        .await
    {
        Ok(b) => Ok(b.to_bytes()),
        Err(_) => Err(()),
    };
    if rest == "init/error" {
        let body = body.unwrap_or_default();
        let kind = error_type.unwrap_or_else(|| error_type_of(&body));
        if let Ok(mut e) = api.init_error.lock() {
            *e = Some((kind, body));
        }
        return api_response(202, json!({"status": "OK"}));
    }
    let Some((id, what)) = rest
        .strip_prefix("invocation/")
        .and_then(|r| r.split_once('/'))
    else {
        return api_response(
            404,
            json!({"errorMessage": "not found", "errorType": "InvalidRequest"}),
        );
    };
    let current = match api.current.lock() {
        Ok(mut c) if c.as_ref().is_some_and(|(cid, _)| cid == id) => c.take(),
        _ => None,
    };
    let Some((_, reply)) = current else {
        return api_response(
            400,
            json!({"errorMessage": format!("Invalid request ID: {id}"), "errorType": "InvalidRequestID"}),
        );
    };
    match (what, body) {
        ("response", Ok(b)) if b.len() > crate::SYNC_PAYLOAD_LIMIT => {
            let _ = reply.send(Reply::TooLarge);
            api_response(
                413,
                json!({"errorMessage": "Payload Too Large", "errorType": "RequestEntityTooLarge"}),
            )
        }
        ("response", Ok(b)) => {
            let _ = reply.send(Reply::Response(b));
            api_response(202, json!({"status": "OK"}))
        }
        ("response", Err(())) => {
            let _ = reply.send(Reply::TooLarge);
            api_response(
                413,
                json!({"errorMessage": "Payload Too Large", "errorType": "RequestEntityTooLarge"}),
            )
        }
        ("error", b) => {
            let b = b.unwrap_or_default();
            let kind = error_type.unwrap_or_else(|| error_type_of(&b));
            let _ = reply.send(Reply::Error(kind, b));
            api_response(202, json!({"status": "OK"}))
        }
        _ => api_response(
            404,
            json!({"errorMessage": "not found", "errorType": "InvalidRequest"}),
        ),
    }
}

fn error_type_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["errorType"].as_str().map(str::to_string))
        .unwrap_or_else(|| "Unhandled".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_split_and_capped() {
        let mut b = LogBuf::default();
        b.push_line(1, b"hello\r".to_vec());
        b.push_line(2, vec![b'x'; MAX_LINE + 10]);
        b.partial = b"tail".to_vec();
        let lines = b.take(3);
        assert_eq!(lines[0], (1, "hello".to_string()));
        assert_eq!(lines[1].1.len(), MAX_LINE);
        assert_eq!(lines[2], (3, "tail".to_string()));
        let mut b = LogBuf::default();
        for _ in 0..(MAX_OUTPUT / 1000 + 5) {
            b.push_line(1, vec![b'y'; 1000]);
        }
        let lines = b.take(2);
        assert!(lines
            .last()
            .unwrap()
            .1
            .contains("bytes of output were dropped"));
    }

    #[test]
    fn runtime_versions() {
        assert_eq!(runtime_version("python3.12"), "python:3.12.virga");
        assert_eq!(runtime_version("nodejs20.x"), "nodejs:20.virga");
        assert_eq!(runtime_version("provided.al2023"), "provided:al2023.virga");
        assert!(runtime_version_arn("us-east-1", "python3.12")
            .starts_with("arn:aws:lambda:us-east-1::runtime:"));
    }

    #[test]
    fn runtimes() {
        assert!(matches!(
            runtime_command("provided.al2023"),
            Ok(Launch::Provided)
        ));
        assert!(runtime_command("java21").unwrap_err().contains("java21"));
    }
}
