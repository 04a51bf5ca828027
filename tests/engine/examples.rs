//! The README's example and the benchmark program run to the end. Each checks its own outcome (the example that both
//! stores hold identical versions, the benchmark that the peer received every record) and exits non-zero otherwise.
//!
//! `cargo test --workspace` builds the examples before it runs any test; a run that did not build them (`cargo test
//! --test engine`) skips these and says so.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;

use crate::support::{Backend, postgres_base};

/// The example binary `name` of this build (`target/<profile>/examples/<name>`), if it was built.
fn example(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe.parent()?.parent()?.join("examples").join(name);
    if path.exists() {
        return Some(path);
    }
    static SAID: Once = Once::new();
    SAID.call_once(|| {
        // Straight to stderr: the harness captures `eprintln!` of passing tests, and a skip must be seen.
        let _ = writeln!(std::io::stderr(), "example tests skipped: examples not built (run `cargo test --workspace`)");
    });
    None
}

/// The example `name` as a command run in `dir` (its working directory and `TMPDIR`).
fn command(name: &str, dir: &Path) -> Option<Command> {
    let mut command = Command::new(example(name)?);
    command.current_dir(dir).env("TMPDIR", dir).env_remove("SCHOOL_DB");
    Some(command)
}

/// Runs an example in a new temporary directory, with these extra environment variables; returns its standard
/// output.
fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> Option<String> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut command = command(name, dir.path())?;
    command.envs(env.iter().copied());
    output(command, name, args)
}

/// Runs an example in `dir`; returns its standard output.
fn run_in(dir: &Path, name: &str, args: &[&str]) -> Option<String> {
    output(command(name, dir)?, name, args)
}

/// The standard output of `command` with `args`, or a failure showing all its output if it fails.
fn output(mut command: Command, name: &str, args: &[&str]) -> Option<String> {
    let out = command.args(args).output().expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(stdout)
}

#[test]
fn the_school_example_syncs_both_ways_and_converges() {
    let Some(out) = run("school", &[], &[]) else { return };
    assert!(out.contains("the devices converged"), "{out}");
    assert!(out.contains("conflicting_serialized_data"), "the example shows a conflict:\n{out}");
}

#[test]
fn the_benchmark_program_syncs_every_record() {
    let Some(out) = run("bench_sync", &["1000"], &[]) else { return };
    assert_every_row(&out, "on SQLite");
}

/// The benchmark ran on `backend` and printed its in-process, incremental and HTTP rows.
fn assert_every_row(out: &str, backend: &str) {
    let rows = [backend, "first sync / floor", "1 % edited", "over HTTP / floor"];
    assert!(rows.iter().all(|row| out.contains(row)), "{out}");
}

#[test]
fn the_benchmark_program_syncs_every_record_on_postgres() {
    if !Backend::Postgres.enabled() {
        return eprintln!("skipped: postgres not in MORANGO_TEST_BACKENDS");
    }
    let server = postgres_base();
    let Some(out) = run("bench_sync", &["1000"], &[("BENCH_POSTGRES_URL", &server)]) else { return };
    assert_every_row(&out, "on PostgreSQL");
}

#[test]
fn the_scale_benchmark_converges_with_one_and_two_server_processes() {
    if !Backend::Postgres.enabled() {
        return eprintln!("skipped: postgres not in MORANGO_TEST_BACKENDS");
    }
    let server = postgres_base();
    let Some(out) = run("bench_scale", &["4"], &[("BENCH_POSTGRES_URL", &server)]) else { return };
    let rows: Vec<&str> = out.lines().filter(|line| line.trim_start().starts_with(['1', '2'])).collect();
    assert_eq!(rows.len(), 2, "a row for one and for two server processes:\n{out}");
    for row in rows {
        let columns: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(columns.get(1..3), Some(&["8", "0"][..]), "8 syncs, none failed:\n{out}");
    }
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The README's two-process run: the office serves its database, the tablet syncs with it in another process.
#[test]
fn the_school_example_serves_and_syncs_as_two_processes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let Some(mut serve) = command("school", dir.path()) else { return };
    let child = serve
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the office");
    let mut office = Running(child);
    let mut printed = String::new();
    let mut lines = BufReader::new(office.0.stdout.take().expect("the office's output")).lines();
    let url = loop {
        let line = lines.next().unwrap_or_else(|| panic!("the office stopped before listening:\n{printed}"));
        let line = line.expect("the office's output");
        printed.push_str(&line);
        printed.push('\n');
        if let Some(url) = line.strip_prefix("Listening on ") {
            break url.trim().to_owned();
        }
    };
    assert!(printed.contains("Created the school"), "the first start creates the school:\n{printed}");

    let sync = ["sync", "--server", url.as_str(), "--username", "admin", "--password", "admin"];
    let first = run_in(dir.path(), "school", &sync).expect("built");
    assert!(first.contains("Pulled 6 records."), "the facility, 2 classrooms and 3 learners:\n{first}");
    assert!(first.contains("issued by the server now"), "{first}");
    let second = run_in(dir.path(), "school", &sync[..3]).expect("built");
    assert!(second.contains("Pulled 0 records.") && second.contains("Pushed 0 records."), "{second}");
    let certs = run_in(dir.path(), "school", &["certs", "list"]).expect("built");
    assert!(certs.contains("full-facility"), "{certs}");
    assert!(first.lines().last().is_some_and(|line| line.starts_with("Took ")), "timings last:\n{first}");
    let learners = run_in(dir.path(), "school", &["learners"]).expect("built");
    assert!(
        learners.starts_with("3 learners:") && learners.contains("Ada Lovelace"),
        "the app's subcommand:\n{learners}"
    );
}

/// Two `school serve` processes started at the same moment on one empty PostgreSQL database (a server scaled out
/// from its first start): one creates the school, the other serves it; the database holds one facility.
#[test]
fn two_server_processes_starting_on_an_empty_database_create_one_facility() {
    if !Backend::Postgres.enabled() {
        return eprintln!("skipped: postgres not in MORANGO_TEST_BACKENDS");
    }
    let Some(school) = example("school") else { return };
    let name = format!("morango_test_{}", uuid::Uuid::new_v4().simple());
    let psql = |database: &str, sql: &str| {
        let out = Command::new("psql")
            .args([format!("{}/{database}", postgres_base()).as_str(), "-qAtc", sql])
            .output()
            .expect("psql");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    psql("postgres", &format!("CREATE DATABASE {name}"));
    let url = format!("{}/{name}", postgres_base());
    let dir = tempfile::tempdir().expect("temporary directory");
    let (servers, readers): (Vec<Running>, Vec<std::thread::JoinHandle<String>>) = (0..2)
        .map(|_| {
            let mut child = Command::new(&school)
                .current_dir(dir.path())
                .env("TMPDIR", dir.path())
                .env("SCHOOL_DB", &url)
                .args(["serve", "--bind", "127.0.0.1:0"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start a server process");
            let stdout = child.stdout.take().expect("its output");
            // Its output up to "Listening on", or all of it if it stops first.
            let reader = std::thread::spawn(move || {
                let mut printed = String::new();
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    printed.push_str(&line);
                    printed.push('\n');
                    if line.starts_with("Listening on ") {
                        break;
                    }
                }
                printed
            });
            (Running(child), reader)
        })
        .unzip();
    let printed: Vec<String> = readers.into_iter().map(|reader| reader.join().expect("its output")).collect();
    let roots = psql(&name, "SELECT COUNT(*) FROM morango_certificate WHERE parent_id IS NULL OR parent_id = ''");
    let facilities = psql(&name, "SELECT COUNT(*) FROM facility");
    drop(servers);
    psql("postgres", &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    for out in &printed {
        assert!(out.contains("Listening on "), "a server process did not start:\n{out}");
    }
    let created = printed.iter().filter(|out| out.contains("Created the school")).count();
    assert_eq!((created, roots.as_str(), facilities.as_str()), (1, "1", "1"), "{printed:#?}");
}

/// Starts `school serve` in `dir` with extra arguments (under `prefix`, e.g. `prlimit`); returns it and its URL.
fn serve_school(dir: &Path, prefix: &[&str], args: &[&str]) -> Option<(Running, String)> {
    let school = example("school")?;
    let mut serve = match prefix.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(school);
            command
        }
        None => Command::new(school),
    };
    let child = serve
        .current_dir(dir)
        .env("TMPDIR", dir)
        .env_remove("SCHOOL_DB")
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the office");
    let mut office = Running(child);
    let mut lines = BufReader::new(office.0.stdout.take().expect("the office's output")).lines();
    let url = loop {
        let line = lines.next().expect("the office stopped before listening").expect("the office's output");
        if let Some(url) = line.strip_prefix("Listening on ") {
            break url.trim().to_owned();
        }
    };
    Some((office, url))
}

/// 300 connections that send half a request and stall, against a server limited to 256 file descriptors: the
/// server closes them after its header timeout and keeps accepting, so a sync completes meanwhile.
#[test]
fn a_server_flooded_with_stalled_connections_still_serves_a_sync() {
    flooded_server_serves_a_sync(None);
}

/// The same with the server's database on PostgreSQL (its connection pool holds descriptors too).
#[test]
fn a_server_on_postgres_flooded_with_stalled_connections_still_serves_a_sync() {
    if !Backend::Postgres.enabled() {
        return eprintln!("skipped: postgres not in MORANGO_TEST_BACKENDS");
    }
    let name = format!("morango_test_{}", uuid::Uuid::new_v4().simple());
    let psql = |sql: &str| {
        let status = Command::new("psql")
            .args([format!("{}/postgres", postgres_base()).as_str(), "-qAtc", sql])
            .status()
            .expect("psql");
        assert!(status.success(), "{sql}");
    };
    psql(&format!("CREATE DATABASE {name}"));
    flooded_server_serves_a_sync(Some(&format!("{}/{name}", postgres_base())));
    psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}

fn flooded_server_serves_a_sync(database: Option<&str>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let prlimit = ["prlimit", "--nofile=256:256", "--"];
    let mut limits = vec!["--max-connections", "100", "--header-timeout", "2s"];
    if let Some(url) = database {
        limits.extend(["--db", url]);
    }
    let Some((mut office, url)) = serve_school(dir.path(), &prlimit, &limits) else { return };
    let addr = url.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let stalled: Vec<std::net::TcpStream> = (0..300)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
            stream
                .write_all(b"GET /api/morango/v1/morangoinfo/1/ HTTP/1.1\r\nHost: school\r\n")
                .expect("half a request");
            stream
        })
        .collect();
    let sync = ["sync", "--server", url.as_str(), "--username", "admin", "--password", "admin"];
    let mut syncing = command("school", dir.path()).expect("built");
    let child = syncing.args(sync).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("sync");
    let mut tablet = Running(child);
    let started = std::time::Instant::now();
    while tablet.0.try_wait().expect("the sync's status").is_none() {
        assert!(started.elapsed() < std::time::Duration::from_secs(90), "the sync did not finish in 90 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut tablet.0.stdout.take().expect("its output"), &mut out).expect("output");
    assert!(out.contains("Pulled 6 records."), "{out}");
    assert!(office.0.try_wait().expect("the office's status").is_none(), "the office is still serving");
    // The stalled connections were closed by the server.
    for mut stream in stalled {
        stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        let mut buffer = [0u8; 64];
        let read = std::io::Read::read(&mut stream, &mut buffer);
        assert!(matches!(read, Ok(0)) || read.is_err(), "a stalled connection was answered or kept: {read:?}");
    }
}
