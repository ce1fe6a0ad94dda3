//! A box for the SQL that runs against an untrusted database: a child
//! process of this same program, bounded where no SQL can reach.
//!
//! SQLite's own limits (set in `untrusted::open`) stop one value from
//! growing past a few MiB, but a CHECK constraint that builds a few MiB on
//! each of 20,000 rows still burns minutes of CPU inside `integrity_check`.
//! So every job over such a file runs in a child that, before it opens the
//! file, closes every descriptor it inherited beyond its three pipes and
//! limits itself: CPU seconds (`RLIMIT_CPU`, from the archive's size),
//! data memory (`RLIMIT_DATA`), file size (`RLIMIT_FSIZE`), open files and
//! core dumps. The parent kills it at a wall-clock deadline too. Whatever
//! ends it early (a limit, a signal, a deadline) is
//! [`DbError::TooMuchWork`]: refused, never a hang or a crash of the server.
//!
//! The child gets no environment but `TMPDIR` (no secret reaches it), one
//! job as JSON on its standard input and gives one reply on its standard
//! output, after [`REPLY_MARK`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use backup_domain::DbError;

use crate::display;
use crate::untrusted::{self, Applied, Changes, Computed, Facts, FailKind, Failure, Secrets};

/// The environment variable that makes this program a sandbox child.
pub const SANDBOX_ENV: &str = "FRAMERR_BACKUP_SANDBOX";
const SANDBOX_SQLITE: &str = "sqlite-v1";
/// What precedes the reply on the child's standard output.
const REPLY_MARK: &[u8] = b"\nframerr-backup-sandbox-reply\n";
/// The child's data segment: SQLite's heap limit, the reply and the job.
const DATA_LIMIT: u64 = 192 << 20;
/// The most the parent reads back.
const MAX_OUTPUT: u64 = 40 << 20;
/// Sandboxes at once in this process: further jobs wait their turn, so
/// that uploads cannot take every core.
const SLOTS: usize = 2;

/// How to start a sandbox child.
#[derive(Debug, Clone)]
pub struct Sandbox {
    program: PathBuf,
    args: Vec<OsString>,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Sandbox {
    /// `program args…` with [`SANDBOX_ENV`] set runs [`child_if_asked`]
    /// first thing.
    pub fn new(program: impl Into<PathBuf>, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        Sandbox {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            slots: Arc::new(tokio::sync::Semaphore::new(SLOTS)),
        }
    }

    /// This very program, whose `main` calls [`child_if_asked`]: through
    /// `/proc/self/exe`, which still runs the program this process runs
    /// after an upgrade replaced or removed its file.
    pub fn this_program() -> std::io::Result<Self> {
        let program = Path::new("/proc/self/exe");
        let program = if program.exists() { program.to_owned() } else { std::env::current_exe()? };
        Ok(Sandbox::new(program, Vec::<OsString>::new()))
    }
}

/// One job and its bounds, as the child reads it.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    path: PathBuf,
    /// The job's CPU time: its progress handler stops SQLite at this, and
    /// `RLIMIT_CPU` stops the process at the next whole second.
    cpu_millis: u64,
    file_size: u64,
    job: Job,
}

#[derive(Debug, Serialize, Deserialize)]
enum Job {
    Computed,
    Check { count: Vec<String> },
    Secrets,
    Apply(Changes),
}

#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Computed(Vec<Computed>),
    Facts(Facts),
    Secrets(Secrets),
    Applied(Applied),
    Failed(Failure),
}

/// The parent's side: runs `job` on `path` in a child, bounded by `cpu`.
async fn run(sandbox: &Sandbox, path: &Path, cpu: Duration, job: Job) -> Result<Reply, DbError> {
    let other = |detail: String| DbError::Other(format!("{}: {detail}", display(path)));
    crate::check_is_sqlite(path).await?;
    let size = tokio::fs::metadata(path).await.map_err(|e| other(e.to_string()))?.len();
    let cpu_millis = u64::try_from(cpu.as_millis()).unwrap_or(u64::MAX);
    let cpu_seconds = cpu_seconds(cpu_millis);
    let envelope = Envelope {
        path: path.to_owned(),
        cpu_millis,
        // Post-restore rewrites pages and rebuilds the search index: room
        // for the file twice over, never the whole disk.
        file_size: size.saturating_mul(2).saturating_add(64 << 20),
        job,
    };
    let input = serde_json::to_vec(&envelope).map_err(|e| other(e.to_string()))?;
    let _slot = sandbox.slots.acquire().await.map_err(|e| other(e.to_string()))?;

    let mut command = tokio::process::Command::new(&sandbox.program);
    command.args(&sandbox.args).env_clear().env(SANDBOX_ENV, SANDBOX_SQLITE);
    if let Some(tmp) = std::env::var_os("TMPDIR") {
        command.env("TMPDIR", tmp);
    }
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| other(format!("cannot start the sandbox: {e}")))?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(other("the sandbox has no pipes".into()));
    };
    // Wall clock: CPU time on a busy machine, and then some.
    let deadline = Duration::from_secs(cpu_seconds.saturating_mul(3).saturating_add(5));
    let talk = async {
        let write = async move {
            // A child that died early closes its end: its status says why.
            let _ = stdin.write_all(&input).await;
            drop(stdin);
        };
        let mut output = Vec::new();
        let mut errors = Vec::new();
        let (mut stdout, mut stderr) = (stdout.take(MAX_OUTPUT), stderr.take(4096));
        let read = stdout.read_to_end(&mut output);
        let read_errors = stderr.read_to_end(&mut errors);
        let (_, read, _) = tokio::join!(write, read, read_errors);
        read.map_err(|e| other(e.to_string()))?;
        let status = child.wait().await.map_err(|e| other(e.to_string()))?;
        Ok::<_, DbError>((status, output, errors))
    };
    let (status, output, errors) = match tokio::time::timeout(deadline, talk).await {
        Ok(done) => done?,
        Err(_) => {
            return Err(too_much(path, &format!("stopped after {} s", deadline.as_secs())));
        }
    };
    let reply = output
        .windows(REPLY_MARK.len())
        .position(|w| w == REPLY_MARK)
        .and_then(|at| serde_json::from_slice::<Reply>(&output[at + REPLY_MARK.len()..]).ok());
    match reply {
        Some(Reply::Failed(failure)) => Err(failed(path, failure)),
        Some(reply) if status.success() => Ok(reply),
        _ => Err(ended(path, status, &errors)),
    }
}

fn cpu_seconds(millis: u64) -> u64 {
    millis.div_ceil(1000).max(1)
}

fn too_much(path: &Path, detail: &str) -> DbError {
    DbError::TooMuchWork { path: display(path), detail: detail.to_owned() }
}

fn failed(path: &Path, failure: Failure) -> DbError {
    match failure.kind {
        FailKind::NotSqlite => DbError::NotSqlite(display(path)),
        FailKind::Corrupt => DbError::Corrupt { path: display(path), detail: failure.detail },
        FailKind::Full => DbError::Full(display(path)),
        FailKind::TooMuchWork => too_much(path, &failure.detail),
        FailKind::Other => DbError::Other(format!("{}: {}", display(path), failure.detail)),
    }
}

/// A child that ended without a reply: a limit stopped it.
fn ended(path: &Path, status: std::process::ExitStatus, errors: &[u8]) -> DbError {
    use std::os::unix::process::ExitStatusExt;
    let why = match status.signal() {
        Some(signal) if signal == nix::sys::signal::Signal::SIGXCPU as i32 => "its CPU time ran out",
        Some(signal) if signal == nix::sys::signal::Signal::SIGXFSZ as i32 => "it wrote more than the file allows",
        // An allocation over the data limit aborts.
        Some(signal) if signal == nix::sys::signal::Signal::SIGABRT as i32 => "its memory ran out",
        Some(_) => "it was stopped",
        None => {
            let text = String::from_utf8_lossy(errors);
            let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no reply");
            return DbError::Other(format!("{}: the check failed: {status}: {last}", display(path)));
        }
    };
    too_much(path, why)
}

fn unexpected(path: &Path) -> DbError {
    DbError::Other(format!("{}: the sandbox answered another question", display(path)))
}

pub(crate) async fn computed(sandbox: &Sandbox, path: &Path, cpu: Duration) -> Result<Vec<Computed>, DbError> {
    match run(sandbox, path, cpu, Job::Computed).await? {
        Reply::Computed(found) => Ok(found),
        _ => Err(unexpected(path)),
    }
}

pub(crate) async fn check(sandbox: &Sandbox, path: &Path, count: &[&str], cpu: Duration) -> Result<Facts, DbError> {
    let count = count.iter().map(|t| (*t).to_owned()).collect();
    match run(sandbox, path, cpu, Job::Check { count }).await? {
        Reply::Facts(facts) => Ok(facts),
        _ => Err(unexpected(path)),
    }
}

pub(crate) async fn secrets(sandbox: &Sandbox, path: &Path, cpu: Duration) -> Result<Secrets, DbError> {
    match run(sandbox, path, cpu, Job::Secrets).await? {
        Reply::Secrets(secrets) => Ok(secrets),
        _ => Err(unexpected(path)),
    }
}

pub(crate) async fn apply(sandbox: &Sandbox, path: &Path, cpu: Duration, changes: Changes) -> Result<Applied, DbError> {
    match run(sandbox, path, cpu, Job::Apply(changes)).await? {
        Reply::Applied(applied) => Ok(applied),
        _ => Err(unexpected(path)),
    }
}

/// Call first thing in `main`: when this process was started as a sandbox
/// child, runs its one job and returns how to exit; otherwise `None`.
pub fn child_if_asked() -> Option<ExitCode> {
    if std::env::var_os(SANDBOX_ENV).as_deref() != Some(SANDBOX_SQLITE.as_ref()) {
        return None;
    }
    Some(child())
}

fn child() -> ExitCode {
    use std::io::{Read, Write};
    close_inherited();
    let mut input = Vec::new();
    if std::io::stdin().read_to_end(&mut input).is_err() {
        return ExitCode::FAILURE;
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope>(&input) else { return ExitCode::FAILURE };
    drop(input);
    if let Err(e) = bound(&envelope) {
        eprintln!("cannot set the sandbox's limits: {e}");
        return ExitCode::FAILURE;
    }
    let reply = match work(&envelope) {
        Ok(reply) => reply,
        Err(failure) => Reply::Failed(failure),
    };
    let Ok(output) = serde_json::to_vec(&reply) else { return ExitCode::FAILURE };
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(REPLY_MARK).and_then(|()| stdout.write_all(&output)).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn work(envelope: &Envelope) -> Result<Reply, Failure> {
    let mut conn = untrusted::open(&envelope.path, Duration::from_millis(envelope.cpu_millis))?;
    let reply = match &envelope.job {
        Job::Computed => Reply::Computed(untrusted::computed(&conn)?),
        Job::Check { count } => Reply::Facts(untrusted::check(&conn, count)?),
        Job::Secrets => Reply::Secrets(untrusted::secrets(&conn)?),
        Job::Apply(changes) => Reply::Applied(untrusted::apply(&mut conn, changes)?),
    };
    conn.close().map_err(|(_, e)| Failure::from(e))?;
    Ok(reply)
}

/// Closes every descriptor beyond standard input, output and error: the
/// child needs none of its parent's (sockets, the live database).
fn close_inherited() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<i32> =
        entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).filter(|fd| *fd > 2).collect();
    for fd in fds {
        // The directory's own descriptor is among them, already closed.
        let _ = nix::unistd::close(fd);
    }
}

fn bound(envelope: &Envelope) -> nix::Result<()> {
    use nix::sys::resource::{Resource, setrlimit};
    // SIGXCPU at the soft limit; the hard limit a second later kills.
    let cpu = cpu_seconds(envelope.cpu_millis);
    setrlimit(Resource::RLIMIT_CPU, cpu, cpu.saturating_add(1))?;
    setrlimit(Resource::RLIMIT_DATA, DATA_LIMIT, DATA_LIMIT)?;
    setrlimit(Resource::RLIMIT_FSIZE, envelope.file_size, envelope.file_size)?;
    setrlimit(Resource::RLIMIT_NOFILE, 32, 32)?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
    Ok(())
}
