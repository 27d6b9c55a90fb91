//! Child processes in their own process group, killed as a group on drop.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running child process (and everything it started).
pub struct Group {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

impl Group {
    /// Spawns `cmd` in a new process group with stdout and stderr going to a log file.
    pub fn spawn(name: &str, mut cmd: Command) -> Group {
        use std::os::unix::process::CommandExt;
        let log = std::env::temp_dir().join(format!(
            "rrstitch-{name}-{}-{}.log",
            std::process::id(),
            crate::free_port()
        ));
        let out = File::create(&log).expect("a log file in the temp dir");
        let err = out.try_clone().expect("a second handle on the log");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({cmd:?}): {e}"));
        Group {
            name: name.to_owned(),
            child,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the log, for failure messages.
    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Polls `ready` until it holds or `timeout` passes; panics with the log tail otherwise.
    pub fn wait_until(&mut self, timeout: Duration, ready: impl FnMut() -> bool) {
        if let Err(tail) = self.ready_or_exited(timeout, ready) {
            panic!(
                "{} exited before it was ready; log {}:\n{tail}",
                self.name,
                self.log.display(),
            );
        }
    }

    /// [`Group::wait_until`], but a process that exits before it is ready is answered with
    /// its log tail rather than a panic, so the caller can start it again (on another port).
    pub fn ready_or_exited(
        &mut self,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), String> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if ready() {
                return Ok(());
            }
            if self.exited() {
                return Err(self.tail());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{} not ready after {timeout:?}; log {}:\n{}",
            self.name,
            self.log.display(),
            self.tail()
        );
    }

    /// SIGTERM to the whole group, then SIGKILL after a grace period.
    /// SIGKILL to the whole group, now: a crash at whatever instruction it was on.
    pub fn kill(&mut self) {
        let pgid = self.child.id() as libc::pid_t;
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }

    /// SIGSTOP to the whole group: a paused instance, frozen wherever it was.
    pub fn pause(&self) {
        unsafe {
            libc::killpg(self.child.id() as libc::pid_t, libc::SIGSTOP);
        }
    }

    /// SIGCONT to the whole group.
    pub fn resume(&self) {
        unsafe {
            libc::killpg(self.child.id() as libc::pid_t, libc::SIGCONT);
        }
    }

    /// Waits for the group leader to exit, returning its exit status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("waiting for a child")
    }

    pub fn stop(&mut self) {
        let pgid = self.child.id() as libc::pid_t;
        unsafe {
            libc::killpg(pgid, libc::SIGTERM);
            // A paused group would never see the SIGTERM.
            libc::killpg(pgid, libc::SIGCONT);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if self.exited() && !group_alive(pgid) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Whether any process of the group is still alive.
pub fn group_alive(pgid: libc::pid_t) -> bool {
    unsafe { libc::killpg(pgid, 0) == 0 }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether something accepts TCP connections on `127.0.0.1:port`.
pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}
