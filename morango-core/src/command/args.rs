//! The command line: clap's derive, and the parsers of the values it reads.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// `<app> [--db PATH|URL] <command>`.
#[derive(Debug, Parser)]
#[command(subcommand_required = true, arg_required_else_help = true)]
pub(crate) struct Cli {
    /// The database: a file path (SQLite, created if missing) or a URL (`sqlite://…`, `postgres://…`).
    #[arg(long, global = true, value_name = "PATH|URL")]
    pub db: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve Morango's HTTP API, for other instances to sync with. On a database that holds no certificate yet, a
    /// root certificate is made first: a new facility.
    Serve(ServeArgs),
    /// Sync with a server: pull its changes, then push this database's, within a certificate's scope.
    Sync(SyncArgs),
    /// This database's certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Close sync and transfer sessions idle for longer than a duration and delete their buffered records.
    CleanupSyncs(CleanupArgs),
}

impl Command {
    /// The subcommand's name as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Serve(_) => "serve",
            Command::Sync(_) => "sync",
            Command::Certs { .. } => "certs",
            Command::CleanupSyncs(_) => "cleanup-syncs",
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on (port 0: any free port; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    pub bind: String,
    /// The most connections served at once (default 512); keep it below the process's file-descriptor limit.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
    /// Close a connection that sends no request headers for this long (default 30s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub header_timeout: Option<Duration>,
    /// Close a client's unfinished transfer idle for this long and drop its buffers (default 15m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub transfer_idle_timeout: Option<Duration>,
    /// The most bytes the unfinished pulls of one client certificate may keep queued (default 1 GiB).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(i64).range(1..))]
    pub max_buffered_bytes: Option<i64>,
}

#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// The server's base URL, e.g. `http://192.168.1.10:8000/`.
    #[arg(long, value_name = "URL", value_parser = parse_server_url)]
    pub server: String,
    /// The username for a certificate request (needed only when this database holds no fitting certificate).
    #[arg(long, value_name = "U", requires = "password")]
    pub username: Option<String>,
    /// The password that goes with `--username`.
    #[arg(long, value_name = "P", requires = "username")]
    pub password: Option<String>,
    /// Sync only this user's data (the single-user scope for this user id), not the whole facility.
    #[arg(long, value_name = "ID", value_parser = parse_non_empty)]
    pub user: Option<String>,
    /// The facility (its dataset id, the id of its root certificate, or the id the application gives it); needed
    /// when the server serves several.
    #[arg(long, value_name = "ID", value_parser = parse_id)]
    pub facility: Option<String>,
    /// Do not pull (only push).
    #[arg(long, conflicts_with = "no_push")]
    pub no_pull: bool,
    /// Do not push (only pull).
    #[arg(long)]
    pub no_push: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CertsCommand {
    /// The certificates this database owns (holds the private key of): id, scope, parent.
    List,
}

#[derive(Debug, Args)]
pub(crate) struct CleanupArgs {
    /// How long a session must have been idle: a number and a unit, `s`, `m`, `h` or `d` (`30m`, `6h`, `2d`,
    /// `1h30m`).
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = parse_duration)]
    pub older_than: Duration,
}

/// A server URL: http or https, with a host.
fn parse_server_url(text: &str) -> Result<String, String> {
    let url =
        reqwest::Url::parse(text).map_err(|e| format!("`{text}` is not a URL ({e}); write e.g. http://host:8000/"))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(format!("`{text}` is not an http:// or https:// URL with a host"));
    }
    Ok(text.to_owned())
}

/// A certificate id: 32 lowercase hex characters.
fn parse_id(text: &str) -> Result<String, String> {
    if crate::ids::is_valid_id(text) {
        Ok(text.to_owned())
    } else {
        Err(format!("`{text}` is not an id (32 lowercase hex characters)"))
    }
}

fn parse_non_empty(text: &str) -> Result<String, String> {
    if text.trim().is_empty() { Err("must not be empty".into()) } else { Ok(text.to_owned()) }
}

const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];

/// `30m`, `6h`, `2d`, `90s`, or several of them, largest first: `1h30m`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let wrong = || format!("`{text}` is not a duration: write a number and a unit, s, m, h or d (30m, 6h, 2d)");
    let mut seconds: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(wrong());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(wrong)?;
        let number: u64 = rest[..digits].parse().map_err(|_| wrong())?;
        let mut chars = rest[digits..].chars();
        let unit = chars.next().ok_or_else(wrong)?;
        let (_, scale) = UNITS.iter().find(|(name, _)| *name == unit).ok_or_else(wrong)?;
        seconds = number.checked_mul(*scale).and_then(|s| seconds.checked_add(s)).ok_or_else(wrong)?;
        rest = chars.as_str();
    }
    Ok(Duration::from_secs(seconds))
}

/// The shortest way [`parse_duration`] reads back: `6h`, `90m`, `2d`, `0s`.
pub(crate) fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (unit, scale) =
        UNITS.iter().find(|(_, scale)| seconds.is_multiple_of(*scale) && seconds > 0).copied().unwrap_or(('s', 1));
    format!("{}{unit}", seconds / scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_a_number_and_a_unit() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(21_600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        for wrong in ["", "6", "h", "5x", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(wrong).is_err(), "{wrong:?}");
        }
        assert_eq!(format_duration(Duration::from_secs(21_600)), "6h");
        assert_eq!(format_duration(Duration::from_secs(5400)), "90m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(parse_duration("6h"), Ok(crate::cleanup::DEFAULT_EXPIRATION), "the default of --older-than");
    }
}
