//! The monitoring role: a login role in `pg_monitor` (read-only access to
//! every statistics view `check` reads), with its own password, let in
//! from the given monitoring hosts to the `postgres` database only. The
//! hosts are also recorded in `postgresql.auto.conf` as
//! `pgrepctl.monitor_role`/`pgrepctl.monitor_from`, which a base backup
//! copies: clone-standby reads them there and lets the same hosts into a
//! standby whose pg_hba.conf lives outside its data directory (Debian).

use super::inspect::Facts;
use super::plan::Plan;
use crate::conf::hba;
use crate::error::{Code, Error, Result};
use crate::pg::{scram, sql};
use crate::plan::sql::{AlterSystem, PASSWORD_HERE, Statement};
use crate::secret::Secret;
use ipnet::IpNet;

/// The recorded settings (custom placeholders: no extension needed).
pub const ROLE_SETTING: &str = "pgrepctl.monitor_role";
pub const FROM_SETTING: &str = "pgrepctl.monitor_from";
/// The one database monitoring connects to.
pub const DATABASE: &str = "postgres";

#[derive(Debug, Clone)]
pub struct MonitorSettings {
    pub role: String,
    pub from: Vec<IpNet>,
    pub password: Option<Secret>,
}

/// What the server says about the monitoring role now.
#[derive(Debug, Clone)]
pub struct MonitorRole {
    pub can_login: bool,
    pub superuser: bool,
    pub in_pg_monitor: bool,
    pub password: Option<String>,
}

pub async fn inspect(
    c: &tokio_postgres::Client,
    role: &str,
) -> std::result::Result<Option<MonitorRole>, tokio_postgres::Error> {
    Ok(c.query_opt(
        "SELECT rolcanlogin, rolsuper, pg_has_role(oid, 'pg_monitor', 'MEMBER'), rolpassword FROM pg_authid WHERE rolname = $1",
        &[&role],
    )
    .await?
    .map(|r| MonitorRole {
        can_login: r.get(0),
        superuser: r.get(1),
        in_pg_monitor: r.get(2),
        password: r.get(3),
    }))
}

/// The hba connections for `from`, as a standby also needs them.
pub fn conns(role: &str, from: &[IpNet]) -> Vec<hba::DbConn> {
    from.iter()
        .map(|addr| hba::DbConn {
            database: DATABASE.into(),
            role: role.into(),
            addr: *addr,
        })
        .collect()
}

/// `10.0.0.3/32,10.0.0.4/32` -> networks; malformed entries are skipped
/// (the value is ours, but a DBA may have edited it).
pub fn parse_from(value: &str) -> Vec<IpNet> {
    value
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// The role, its membership and password, and the recorded hosts; true
/// when postgresql.auto.conf changes, so that the caller plans a reload.
pub fn plan(facts: &Facts, m: &MonitorSettings, plan: &mut Plan) -> Result<bool> {
    let name = sql::ident(&m.role);
    match &facts.monitor_role {
        None => plan_create(m, &name, plan)?,
        Some(r) if r.superuser => {
            return Err(Error::new(
                Code::InvalidRoleName,
                format!(
                    "--monitor-user {:?} is a superuser; a monitoring role needs only pg_monitor",
                    m.role
                ),
            )
            .hint("choose another name for the monitoring role, e.g. --monitor-user monitor"));
        }
        Some(r) => plan_alter(r, m, &name, plan),
    }
    Ok(plan_recorded(facts, m, plan))
}

/// A new monitoring role needs a password to log in with: refuse to
/// create one without it rather than create a role nobody can use.
fn plan_create(m: &MonitorSettings, name: &str, plan: &mut Plan) -> Result<()> {
    let Some(pw) = &m.password else {
        return Err(Error::new(
            Code::PasswordRequired,
            format!(
                "monitoring role {:?} does not exist and no password was given for it",
                m.role
            ),
        )
        .hint("give --monitor-password-file FILE (first line: the password, mode 0600)"));
    };
    plan.push(Statement::with_password(
        &format!("CREATE ROLE {name} WITH LOGIN PASSWORD {PASSWORD_HERE} IN ROLE pg_monitor"),
        &scram::hash(pw),
        Some(Secret::new(format!("DROP ROLE {name}"))),
    ));
    Ok(())
}

/// An existing role gets only what it lacks (LOGIN, pg_monitor, a
/// password that differs from the one given), each undone on its own.
fn plan_alter(r: &MonitorRole, m: &MonitorSettings, name: &str, plan: &mut Plan) {
    if !r.can_login {
        plan.push(sql_step(
            format!("ALTER ROLE {name} WITH LOGIN"),
            format!("ALTER ROLE {name} WITH NOLOGIN"),
        ));
    }
    if !r.in_pg_monitor {
        plan.push(sql_step(
            format!("GRANT pg_monitor TO {name}"),
            format!("REVOKE pg_monitor FROM {name}"),
        ));
    }
    if let Some(pw) = &m.password {
        if !r
            .password
            .as_deref()
            .is_some_and(|s| scram::matches(s, pw, &m.role))
        {
            plan.push(Statement::with_password(
                &format!("ALTER ROLE {name} WITH PASSWORD {PASSWORD_HERE}"),
                &scram::hash(pw),
                r.password.as_ref().map(|old| {
                    Secret::new(format!(
                        "ALTER ROLE {name} WITH PASSWORD {}",
                        sql::literal(old)
                    ))
                }),
            ));
        }
    }
}

/// Records the role and its hosts in postgresql.auto.conf for the
/// standbys (a base backup copies it): the union of what is recorded and
/// what is given, so an earlier run's hosts are kept. True when a setting
/// changes.
fn plan_recorded(facts: &Facts, m: &MonitorSettings, plan: &mut Plan) -> bool {
    let recorded = |n: &str| {
        facts
            .file_settings
            .iter()
            .filter(|f| f.name == n && f.sourcefile == facts.auto_conf)
            .max_by_key(|f| f.seqno)
            .map(|f| f.setting.clone())
    };
    let mut from = recorded(FROM_SETTING)
        .map(|v| parse_from(&v))
        .unwrap_or_default();
    for a in &m.from {
        if !from.contains(a) {
            from.push(*a);
        }
    }
    let from_value = from
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut changed = false;
    for (setting, want) in [(ROLE_SETTING, m.role.clone()), (FROM_SETTING, from_value)] {
        let old = recorded(setting);
        if old.as_deref() != Some(want.as_str()) {
            plan.push(AlterSystem {
                name: setting.into(),
                value: want,
                old: old.unwrap_or_default(),
            });
            changed = true;
        }
    }
    changed
}

fn sql_step(shown: String, undo: String) -> Statement {
    Statement::new(shown, Some(undo))
}
