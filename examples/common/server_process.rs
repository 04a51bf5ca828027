//! `examples/school serve` as a child process, for the benchmark programs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// `examples/school serve` on the server database, on a free loopback port.
pub struct ServerProcess {
    child: Child,
    /// Its base URL.
    pub url: String,
}

impl ServerProcess {
    /// Starts it on `database` (a URL or path, as `SCHOOL_DB` takes it) and waits until it listens.
    pub fn start(database: &str) -> Result<ServerProcess> {
        let program = std::env::current_exe()?.with_file_name("school");
        if !program.exists() {
            return Err(
                format!("{} is missing: build it with `cargo build --release --examples`", program.display()).into()
            );
        }
        let mut child = Command::new(&program)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("SCHOOL_DB", database)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("the server's output")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("Listening on ") {
                        break url.trim().to_owned();
                    }
                }
                _ => {
                    let _ = child.kill();
                    return Err("the server process stopped before listening".into());
                }
            }
        };
        // Keep reading what it prints, so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(ServerProcess { child, url })
    }

    /// The process's peak resident memory so far, from `/proc` (NaN where there is none).
    pub fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
