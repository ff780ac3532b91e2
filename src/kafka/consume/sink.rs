//! The sink past the consumer: seed 000's PostgreSQL table of events, written the way an
//! ingestion consumer writes it — one transaction per polled batch, the batch sent with
//! `COPY` into a staging table and moved into the events table with `ON CONFLICT DO
//! NOTHING`, so that a batch read again after a rebalance (Kafka's at-least-once) does not
//! store an event twice. Each batch's transaction time is the insert latency.

use std::fmt::Write as _;
use std::io::Write as _;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long connecting to PostgreSQL may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest table name PostgreSQL keeps.
const MAX_TABLE_NAME: usize = 63;

/// Where the consumers write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// A libpq connection string: `postgres://USER:PASSWORD@HOST:PORT/DB` or
    /// `host=… user=… dbname=…`.
    pub url: String,
    /// The events table (created when missing).
    pub table: String,
    /// The addresses an agent's allow-list resolved the hosts to, one per host: the
    /// connection goes to them and no name is looked up again. Empty on the user's own
    /// machine.
    #[serde(skip)]
    pub addresses: Vec<std::net::IpAddr>,
}

impl SinkConfig {
    /// The TCP hosts and ports the connection string names (`Err` for a Unix socket).
    pub fn tcp_hosts(&self) -> Result<Vec<(String, u16)>, String> {
        let config = postgres::Config::from_str(&self.url)
            .map_err(|err| format!("--sink '{}' is not a PostgreSQL connection string: {err}", redact(&self.url)))?;
        let ports = config.get_ports();
        config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(index, host)| match host {
                postgres::config::Host::Tcp(name) => {
                    let port = ports.get(index).or(ports.first()).copied().unwrap_or(5432);
                    Ok((name.clone(), port))
                }
                #[cfg(unix)]
                postgres::config::Host::Unix(path) => {
                    Err(format!("the sink names a Unix socket ({}); give a TCP host", path.display()))
                }
            })
            .collect()
    }

    /// Checks the configuration without connecting.
    pub fn validate(&self) -> Result<(), String> {
        postgres::Config::from_str(&self.url)
            .map_err(|err| format!("--sink '{}' is not a PostgreSQL connection string: {err}", redact(&self.url)))?;
        let name_ok = self.table.len() <= MAX_TABLE_NAME
            && self.table.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && self.table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name_ok {
            return Err(format!(
                "--sink-table '{}' is not a plain table name; use letters, digits and _ (at most {MAX_TABLE_NAME})",
                self.table
            ));
        }
        Ok(())
    }
}

/// The connection string without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url
            .split_whitespace()
            .map(|pair| if pair.starts_with("password=") { "password=***" } else { pair })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// One event as the table stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `event_id`.
    pub event_id: uuid::Uuid,
    /// `device_id`.
    pub device_id: String,
    /// `timestamp`, RFC 3339 as the event carried it.
    pub timestamp: String,
    /// `seq`.
    pub seq: u64,
    /// `metrics`, as JSON.
    pub metrics: String,
    /// `status`.
    pub status: String,
}

/// What one batch's write did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Written {
    /// Rows that were new.
    pub inserted: u64,
    /// Rows already in the table (read again after a rebalance, or produced twice).
    pub already_stored: u64,
    /// The transaction's time.
    pub took: Duration,
}

/// One consumer member's connection.
pub struct Sink {
    client: postgres::Client,
    insert: String,
    copy: String,
}

impl Sink {
    /// Connects, creates the events table when missing and this connection's staging table.
    pub fn connect(config: &SinkConfig) -> Result<Sink, String> {
        config.validate()?;
        let mut pg = postgres::Config::from_str(&config.url).map_err(|err| err.to_string())?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(CONNECT_TIMEOUT);
        }
        for address in &config.addresses {
            pg.hostaddr(*address);
        }
        pg.application_name("plateau-consume");
        if pg.get_options().is_none() {
            // `CREATE TABLE IF NOT EXISTS` would otherwise log a notice on every connection.
            pg.options("-c client_min_messages=warning");
        }
        let mut client = pg.connect(postgres::NoTls).map_err(|err| {
            format!("cannot write to PostgreSQL at {}: {}; check --sink", redact(&config.url), describe(&err))
        })?;
        let table = &config.table;
        // Seed 000's event, one column per field.
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {table} (event_id uuid PRIMARY KEY, device_id text NOT NULL, \
             \"timestamp\" timestamptz NOT NULL, seq bigint NOT NULL, metrics jsonb NOT NULL, status text NOT NULL); \
             CREATE TEMP TABLE plateau_staging (LIKE {table}) ON COMMIT DELETE ROWS"
        );
        client.batch_execute(&create).map_err(|err| {
            format!("PostgreSQL at {} refused the events table '{table}': {}", redact(&config.url), describe(&err))
        })?;
        Ok(Sink {
            client,
            insert: format!("INSERT INTO {table} SELECT * FROM plateau_staging ON CONFLICT (event_id) DO NOTHING"),
            copy: "COPY plateau_staging FROM STDIN".into(),
        })
    }

    /// Writes one batch in one transaction.
    pub fn write(&mut self, rows: &[Row]) -> Result<Written, String> {
        let started = Instant::now();
        let mut text = String::with_capacity(rows.len() * 160);
        for row in rows {
            copy_line(&mut text, row);
        }
        let mut transaction = self.client.transaction().map_err(|err| describe(&err))?;
        let mut writer = transaction.copy_in(&self.copy).map_err(|err| describe(&err))?;
        writer.write_all(text.as_bytes()).map_err(|err| err.to_string())?;
        writer.finish().map_err(|err| describe(&err))?;
        let inserted = transaction.execute(&self.insert, &[]).map_err(|err| describe(&err))?;
        transaction.commit().map_err(|err| describe(&err))?;
        Ok(Written { inserted, already_stored: (rows.len() as u64).saturating_sub(inserted), took: started.elapsed() })
    }
}

/// A PostgreSQL error with its server-side detail when there is one.
fn describe(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => err.to_string(),
    }
}

/// One row in COPY's text format: tab-separated, with backslash, tab and line ends escaped.
fn copy_line(out: &mut String, row: &Row) {
    let _ = write!(out, "{}\t", row.event_id);
    escape_into(out, &row.device_id);
    out.push('\t');
    escape_into(out, &row.timestamp);
    let _ = write!(out, "\t{}\t", row.seq);
    escape_into(out, &row.metrics);
    out.push('\t');
    escape_into(out, &row.status);
    out.push('\n');
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_lines_escape_what_copy_would_split_on() {
        let row = Row {
            event_id: uuid::Uuid::nil(),
            device_id: "a\tb\\c".into(),
            timestamp: "2026-01-22T15:42:11.123Z".into(),
            seq: 7,
            metrics: "{\"temperature\":21.4}".into(),
            status: "OK\n".into(),
        };
        let mut line = String::new();
        copy_line(&mut line, &row);
        assert_eq!(
            line,
            "00000000-0000-0000-0000-000000000000\ta\\tb\\\\c\t2026-01-22T15:42:11.123Z\t7\t{\"temperature\":21.4}\tOK\\n\n"
        );
    }

    #[test]
    fn bad_sinks_say_what_to_fix_and_hide_passwords() {
        let sink =
            |url: &str, table: &str| SinkConfig { url: url.into(), table: table.into(), addresses: vec![] }.validate();
        assert!(sink("postgres://u:secret@h:5432/db", "events").is_ok());
        assert!(
            sink("postgres://u:secret@h:5432/db", "events; drop table x").unwrap_err().contains("plain table name")
        );
        assert!(sink("postgres://u:secret@h:notaport/db", "events").unwrap_err().contains("not a PostgreSQL"));
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("host=h password=secret dbname=d"), "host=h password=*** dbname=d");
    }
}
