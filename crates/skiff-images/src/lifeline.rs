//! A lifeline: a small watcher process (`sh`) that runs a cleanup script when
//! the process that spawned it goes away, however it goes (exit, panic,
//! SIGKILL). It ties helper processes (a skiff-owned containerd, a test's
//! `skiff server`) to their owner without `PR_SET_PDEATHSIG`, which fires when
//! the spawning *thread* exits and needs unsafe code.
//!
//! How: the watcher blocks reading its stdin, a pipe whose only write end is
//! held by the owner (std opens it close-on-exec, so no other child inherits
//! it). The kernel closes that end when the owner dies; the watcher then
//! reads end-of-file and runs its script. An owner that cleans up by itself
//! disarms the lifeline (the watcher is killed before it runs anything).
//! The watcher ignores SIGINT, SIGTERM and SIGHUP, so a Ctrl-C to the
//! owner's process group does not take it down before it can act.

use std::io;
use std::process::{Child, ChildStdin, Command, Stdio};

/// The watcher's argv[0] (what `ps` shows).
const WATCHER_NAME: &str = "skiff-lifeline";

/// A watcher that runs a script when its owner exits; disarmed on drop.
#[derive(Debug)]
pub struct Lifeline {
    watcher: Option<Child>,
    /// The write end of the watcher's stdin: closing it fires the script.
    pipe: Option<ChildStdin>,
}

impl Lifeline {
    /// Spawns `sh` to run `script` (with `args` as `$1`, `$2`, ...) once this
    /// process exits or [`Lifeline::fire`] is called; nothing runs when it is
    /// disarmed first. The script's output is discarded.
    pub fn spawn(script: &str, args: &[String]) -> io::Result<Lifeline> {
        let full = format!("trap '' INT TERM HUP\nread -r _ || :\n{script}\n");
        let mut watcher = Command::new("sh")
            .arg("-c")
            .arg(full)
            .arg(WATCHER_NAME)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let pipe = watcher.stdin.take();
        Ok(Lifeline {
            watcher: Some(watcher),
            pipe,
        })
    }

    /// The watcher's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.watcher.as_ref().map(Child::id)
    }

    /// Kills the watcher without running its script. Idempotent.
    pub fn disarm(&mut self) {
        if let Some(mut watcher) = self.watcher.take() {
            let _ = watcher.kill();
            let _ = watcher.wait();
        }
        self.pipe = None;
    }

    /// Runs the script now (as if the owner had exited) and waits for it.
    pub fn fire(&mut self) {
        self.pipe = None;
        if let Some(mut watcher) = self.watcher.take() {
            let _ = watcher.wait();
        }
    }
}

impl Drop for Lifeline {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// A script for [`Lifeline::spawn`] that SIGKILLs process group `$1`.
pub const KILL_GROUP_SCRIPT: &str = r#"kill -KILL -- "-$1" 2>/dev/null || :"#;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::{Duration, Instant};

    fn wait_for(path: &Path) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if path.exists() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    struct KillOnDrop(Child);

    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn touch_script() -> &'static str {
        r#": > "$1""#
    }

    #[test]
    fn firing_runs_the_script_with_its_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("fired");
        let mut line = Lifeline::spawn(touch_script(), &[marker.display().to_string()]).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(!marker.exists(), "ran before the owner let go");
        line.fire();
        assert!(marker.exists());
    }

    #[test]
    fn a_disarmed_lifeline_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("fired");
        let line = Lifeline::spawn(touch_script(), &[marker.display().to_string()]).unwrap();
        drop(line);
        std::thread::sleep(Duration::from_millis(300));
        assert!(!marker.exists());
    }

    /// The owner is a process killed with SIGKILL: its lifeline still fires.
    /// The owner is this test binary run again in the helper mode below.
    #[test]
    fn the_script_runs_when_the_owner_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("fired");
        let owner = Command::new(std::env::current_exe().unwrap())
            .args([
                "lifeline::tests::owner_helper",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env("SKIFF_LIFELINE_MARKER", &marker)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut owner = KillOnDrop(owner);
        let armed = dir.path().join("fired.armed");
        assert!(wait_for(&armed), "the owner never armed its lifeline");
        assert!(!marker.exists());
        owner.0.kill().unwrap();
        owner.0.wait().unwrap();
        assert!(wait_for(&marker), "the lifeline did not fire after SIGKILL");
    }

    /// Helper of the test above, not a test by itself: arms a lifeline that
    /// touches `$SKIFF_LIFELINE_MARKER`, says so, and waits to be killed.
    #[test]
    #[ignore = "helper process of the_script_runs_when_the_owner_is_killed"]
    fn owner_helper() {
        let Some(marker) = std::env::var_os("SKIFF_LIFELINE_MARKER") else {
            return;
        };
        let marker = std::path::PathBuf::from(marker);
        let line = Lifeline::spawn(touch_script(), &[marker.display().to_string()]).unwrap();
        std::fs::write(marker.with_extension("armed"), b"").unwrap();
        std::thread::sleep(Duration::from_secs(60));
        drop(line);
    }
}
