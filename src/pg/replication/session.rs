//! The replication commands pgrepctl sends, each with a typed answer.
//! Names go into commands only when they are plain identifiers (the
//! replication grammar has no parameters), so nothing can be spliced in.

use super::error::ReplError;
use super::wire::{Connection, Rows, Streamed};
use super::{Identity, parse_lsn, require};
use crate::pg::version::Version;

/// A logged-in replication connection.
pub struct ReplConnection {
    conn: Connection,
    version: Option<Version>,
}

/// What CREATE_REPLICATION_SLOT answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSlot {
    pub name: String,
    /// Where the slot starts keeping WAL (RESERVE_WAL), when reported.
    pub consistent_point: Option<u64>,
}

/// A logical slot created with its snapshot exported: other sessions
/// see the database as the slot's first change will find it
/// (`SET TRANSACTION SNAPSHOT`), while this connection stays idle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedSlot {
    pub consistent_point: u64,
    pub snapshot: String,
}

/// What TIMELINE_HISTORY answers: the history file of a timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineHistory {
    /// "00000002.history"
    pub filename: String,
    pub content: String,
}

impl TimelineHistory {
    /// Each earlier timeline and the LSN where it was left, oldest first
    /// (lines "TLI<tab>LSN<tab>reason"; comments and blank lines skipped).
    pub fn switch_points(&self) -> Vec<(u32, u64)> {
        crate::pg::timeline::parse_switch_points(&self.content)
    }
}

/// What READ_REPLICATION_SLOT says of an existing physical slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotPosition {
    pub restart_lsn: Option<u64>,
    pub restart_tli: Option<u32>,
}

impl ReplConnection {
    pub(super) fn new(conn: Connection) -> ReplConnection {
        ReplConnection {
            conn,
            version: None,
        }
    }

    pub async fn identify_system(&mut self) -> Result<Identity, ReplError> {
        let rows = self.conn.simple_query("IDENTIFY_SYSTEM").await?;
        parse_identity(&rows)
    }

    /// A setting's value as SHOW prints it ("16MB", "replica").
    pub async fn show(&mut self, name: &str) -> Result<String, ReplError> {
        let rows = self.conn.simple_query(&show_command(name)?).await?;
        text(&rows, 0, 0).ok_or_else(|| shape("SHOW", &rows))
    }

    /// Whether the server is a standby (in recovery), as a replication
    /// connection can tell: `in_hot_standby` on 14+; before, a SHOW runs
    /// in a transaction of its own, read-only in recovery, so
    /// `transaction_read_only` says it unless `default_transaction_read_only`
    /// is on (None: cannot tell).
    pub async fn in_recovery(&mut self) -> Result<Option<bool>, ReplError> {
        if self.version().await?.shows_in_hot_standby() {
            return Ok(Some(self.show("in_hot_standby").await? == "on"));
        }
        if self.show("transaction_read_only").await? == "off" {
            return Ok(Some(false));
        }
        Ok((self.show("default_transaction_read_only").await? == "off").then_some(true))
    }

    /// IDENTIFY_SYSTEM and `SHOW` each of `names`, sent together and
    /// answered in one round trip; the first failure is the error.
    pub async fn identify_and_show(
        &mut self,
        names: &[&str],
    ) -> Result<(Identity, Vec<String>), ReplError> {
        let mut commands = vec!["IDENTIFY_SYSTEM".to_string()];
        for n in names {
            commands.push(show_command(n)?);
        }
        let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
        let mut answers = self.conn.pipelined(&commands).await?.into_iter();
        let identity = parse_identity(&answers.next().expect("an answer per command")?)?;
        let mut values = Vec::with_capacity(names.len());
        for rows in answers {
            let rows = rows?;
            values.push(text(&rows, 0, 0).ok_or_else(|| shape("SHOW", &rows))?);
        }
        Ok((identity, values))
    }

    /// Stream WAL from `start` on `timeline` and count what arrives (see
    /// [`Connection::measure_stream`]); then only [`Self::close`] is left.
    pub async fn measure_stream(
        &mut self,
        start: u64,
        timeline: u32,
        want: u64,
        limit: std::time::Duration,
    ) -> Result<Streamed, ReplError> {
        let command = format!(
            "START_REPLICATION PHYSICAL {} TIMELINE {timeline}",
            super::format_lsn(start)
        );
        self.conn.measure_stream(&command, want, limit).await
    }

    /// The server's version, asked once.
    pub async fn version(&mut self) -> Result<Version, ReplError> {
        if let Some(v) = self.version {
            return Ok(v);
        }
        let num = self.show("server_version_num").await?;
        let v = num
            .parse()
            .ok()
            .and_then(|n| Version::new(n).ok())
            .ok_or_else(|| ReplError::Unsupported(format!("server_version_num {num}")))?;
        self.version = Some(v);
        Ok(v)
    }

    /// `CREATE_REPLICATION_SLOT name PHYSICAL RESERVE_WAL`: an existing
    /// slot fails with SQLSTATE 42710 (duplicate_object).
    pub async fn create_physical_slot(&mut self, name: &str) -> Result<CreatedSlot, ReplError> {
        slot_name(name)?;
        let rows = self
            .conn
            .simple_query(&format!(
                "CREATE_REPLICATION_SLOT {name} PHYSICAL RESERVE_WAL"
            ))
            .await?;
        Ok(CreatedSlot {
            name: text(&rows, 0, 0).unwrap_or_else(|| name.to_string()),
            consistent_point: text(&rows, 0, 1).and_then(|l| parse_lsn(&l)),
        })
    }

    /// `CREATE_REPLICATION_SLOT name LOGICAL plugin` exporting its
    /// snapshot, on a logical replication connection. The snapshot lives
    /// until the next command on this connection or its end. 15+ spells
    /// the option `(SNAPSHOT 'export')`; the older `EXPORT_SNAPSHOT` is
    /// what 10 to 14 understand (15+ still accept it, as legacy).
    pub async fn create_logical_slot_exporting(
        &mut self,
        name: &str,
        plugin: &str,
    ) -> Result<ExportedSlot, ReplError> {
        slot_name(name)?;
        slot_name(plugin)?;
        let v = self.version().await?;
        let option = if v.major() >= 15 {
            "(SNAPSHOT 'export')"
        } else {
            "EXPORT_SNAPSHOT"
        };
        let rows = self
            .conn
            .simple_query(&format!(
                "CREATE_REPLICATION_SLOT {name} LOGICAL {plugin} {option}"
            ))
            .await?;
        let bad = || shape("CREATE_REPLICATION_SLOT", &rows);
        Ok(ExportedSlot {
            consistent_point: text(&rows, 0, 1)
                .and_then(|l| parse_lsn(&l))
                .ok_or_else(bad)?,
            snapshot: text(&rows, 0, 2).ok_or_else(bad)?,
        })
    }

    /// `DROP_REPLICATION_SLOT name`: a missing slot fails with SQLSTATE
    /// 42704 (undefined_object), one in use with 55006.
    pub async fn drop_slot(&mut self, name: &str) -> Result<(), ReplError> {
        slot_name(name)?;
        self.conn
            .simple_query(&format!("DROP_REPLICATION_SLOT {name} WAIT"))
            .await
            .map(|_| ())
    }

    /// `TIMELINE_HISTORY tli`: the history file of a timeline above 1
    /// (what follow and rejoin compare against their own timeline).
    pub async fn timeline_history(&mut self, tli: u32) -> Result<TimelineHistory, ReplError> {
        let rows = self
            .conn
            .simple_query(&format!("TIMELINE_HISTORY {tli}"))
            .await?;
        let filename = text(&rows, 0, 0).ok_or_else(|| shape("TIMELINE_HISTORY", &rows))?;
        let content = text(&rows, 0, 1).ok_or_else(|| shape("TIMELINE_HISTORY", &rows))?;
        Ok(TimelineHistory { filename, content })
    }

    /// `READ_REPLICATION_SLOT name` (15+): None when no such slot.
    pub async fn read_replication_slot(
        &mut self,
        name: &str,
    ) -> Result<Option<SlotPosition>, ReplError> {
        slot_name(name)?;
        let v = self.version().await?;
        require(v, v.read_replication_slot(), "READ_REPLICATION_SLOT")?;
        let rows = self
            .conn
            .simple_query(&format!("READ_REPLICATION_SLOT {name}"))
            .await?;
        if rows.rows.is_empty() {
            return Err(shape("READ_REPLICATION_SLOT", &rows));
        }
        Ok(text(&rows, 0, 0).map(|_| SlotPosition {
            restart_lsn: text(&rows, 0, 1).and_then(|l| parse_lsn(&l)),
            restart_tli: text(&rows, 0, 2).and_then(|t| t.parse().ok()),
        }))
    }

    /// `pg_postmaster_start_time()`, on a logical replication connection
    /// (a physical one takes no SQL): with the system identifier it tells
    /// one server from another of the same cluster, however each is named.
    pub async fn postmaster_start_time(&mut self) -> Result<String, ReplError> {
        let rows = self
            .conn
            .simple_query("SELECT pg_postmaster_start_time()::text")
            .await?;
        text(&rows, 0, 0).ok_or_else(|| shape("pg_postmaster_start_time()", &rows))
    }

    /// End the connection politely.
    pub async fn close(self) {
        self.conn.close().await
    }
}

/// `SHOW name` for a plain setting name (nothing a command could hide in).
fn show_command(name: &str) -> Result<String, ReplError> {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    match plain {
        true => Ok(format!("SHOW {name}")),
        false => Err(ReplError::InvalidName(name.to_string())),
    }
}

/// Slot names as PostgreSQL allows them: lower-case letters, digits and
/// underscores, at most 63.
fn slot_name(name: &str) -> Result<(), ReplError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ReplError::InvalidName(name.to_string()))
    }
}

/// One cell as text; None when absent or NULL.
fn text(rows: &Rows, row: usize, col: usize) -> Option<String> {
    let cell = rows.rows.get(row)?.get(col)?.as_ref()?;
    Some(String::from_utf8_lossy(cell).into_owned())
}

fn shape(command: &str, rows: &Rows) -> ReplError {
    ReplError::Protocol(format!(
        "{command} answered {} row(s) of columns {:?}",
        rows.rows.len(),
        rows.columns
    ))
}

/// IDENTIFY_SYSTEM's row: systemid, timeline, xlogpos, dbname.
pub(super) fn parse_identity(rows: &Rows) -> Result<Identity, ReplError> {
    let bad = || shape("IDENTIFY_SYSTEM", rows);
    Ok(Identity {
        system_id: text(rows, 0, 0).ok_or_else(bad)?,
        timeline: text(rows, 0, 1)
            .and_then(|t| t.parse().ok())
            .ok_or_else(bad)?,
        lsn: text(rows, 0, 2)
            .and_then(|l| parse_lsn(&l))
            .ok_or_else(bad)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(cells: &[Option<&str>]) -> Rows {
        Rows {
            columns: vec![],
            rows: vec![
                cells
                    .iter()
                    .map(|c| c.map(|s| s.as_bytes().to_vec()))
                    .collect(),
            ],
        }
    }

    #[test]
    fn identity() {
        let id = parse_identity(&rows(&[
            Some("7301234567890123456"),
            Some("1"),
            Some("0/3000148"),
            None,
        ]))
        .unwrap();
        assert_eq!(id.system_id, "7301234567890123456");
        assert_eq!(id.timeline, 1);
        assert_eq!(id.lsn, 0x3000148);
        assert!(parse_identity(&Rows::default()).is_err());
        assert!(parse_identity(&rows(&[Some("1"), Some("x"), Some("0/1")])).is_err());
    }

    #[test]
    fn history_switch_points() {
        let h = TimelineHistory {
            filename: "00000003.history".into(),
            content: "1\t0/3000158\tno recovery target specified\n\n2\t0/5000000\tat restore point \"x\"\n"
                .into(),
        };
        assert_eq!(h.switch_points(), vec![(1, 0x3000158), (2, 0x5000000)]);
    }

    #[test]
    fn only_plain_names_reach_a_command() {
        assert!(slot_name("standby_1").is_ok());
        for bad in ["", "Bad", "a b", "x; DROP", &"a".repeat(64)] {
            assert!(
                matches!(slot_name(bad), Err(ReplError::InvalidName(_))),
                "{bad}"
            );
        }
    }
}
