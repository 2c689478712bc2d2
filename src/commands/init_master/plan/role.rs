//! The replication role: created with LOGIN REPLICATION and a SCRAM
//! password, or brought to that; never a role that is more than that
//! unless the DBA says so.

use super::Plan;
use crate::commands::init_master::Settings;
use crate::commands::init_master::inspect::{Facts, RoleFacts};
use crate::error::{Code, Error, Result};
use crate::pg::{scram, sql};
use crate::plan::sql::{PASSWORD_HERE, Statement};
use crate::secret::Secret;

pub fn plan_role(settings: &Settings, facts: &Facts, plan: &mut Plan) -> Result<()> {
    match &facts.role {
        None => create_role(settings, plan),
        Some(role) => {
            if !settings.allow_privileged_role {
                refuse_shared_role(settings, facts, role)?;
            }
            alter_role(settings, facts, role, plan);
            Ok(())
        }
    }
}

/// A new role: LOGIN REPLICATION and the password, which must be given.
fn create_role(settings: &Settings, plan: &mut Plan) -> Result<()> {
    let name = sql::ident(&settings.role);
    let Some(pw) = &settings.password else {
        return Err(Error::new(
            Code::PasswordRequired,
            format!(
                "role {:?} does not exist and no password was given for it",
                settings.role
            ),
        )
        .hint(format!(
            "give --password-file FILE (first line: the password, mode 0600) or set {}",
            crate::commands::password::ENV
        )));
    };
    plan.push(Statement::with_password(
        &format!("CREATE ROLE {name} WITH LOGIN REPLICATION PASSWORD {PASSWORD_HERE}"),
        &scram::hash(pw),
        Some(Secret::new(format!("DROP ROLE {name}"))),
    ));
    Ok(())
}

/// An existing role: what it lacks (LOGIN, REPLICATION, the password),
/// with an undo that gives back what it had.
fn alter_role(settings: &Settings, facts: &Facts, role: &RoleFacts, plan: &mut Plan) {
    let name = sql::ident(&settings.role);
    let pw = &settings.password;
    let mut attrs = vec![];
    let mut undo = vec![];
    if !role.can_login {
        attrs.push("LOGIN");
        undo.push("NOLOGIN");
    }
    if !role.replication {
        attrs.push("REPLICATION");
        undo.push("NOREPLICATION");
    }
    let new_pw = match pw {
        Some(p)
            if !role
                .password
                .as_deref()
                .is_some_and(|s| scram::matches(s, p, &settings.role)) =>
        {
            Some(scram::hash(p))
        }
        _ => None,
    };
    if pw.is_none() {
        match role.password.as_deref() {
            None if settings.method != "cert" && settings.method != "trust" => plan.warnings.push(format!(
                "role {:?} has no password, so standbys cannot authenticate with {}: give --password-file",
                settings.role, settings.method
            )),
            Some(p) if p.starts_with("md5") && settings.method == "scram-sha-256" => plan.warnings.push(format!(
                "role {:?} has an md5 password, which scram-sha-256 in pg_hba.conf rejects: give --password-file to store it as SCRAM",
                settings.role
            )),
            _ => {}
        }
    }
    if attrs.is_empty() && new_pw.is_none() {
        return;
    }
    if new_pw.is_some() && !facts.streaming_as_role.is_empty() {
        plan.warnings.push(format!(
            "the password of role {:?} changes while standbys stream with the old one ({}): they go on until they reconnect, then fail to authenticate until their passfile holds the new password (rerun clone-standby, or edit the standby's passfile)",
            settings.role,
            facts.streaming_as_role.join(", ")
        ));
    }
    let mut shown = format!("ALTER ROLE {name} WITH {}", attrs.join(" "));
    let mut real = shown.clone();
    let mut undo_sql = format!("ALTER ROLE {name} WITH {}", undo.join(" "));
    if let Some(v) = new_pw {
        shown.push_str(&format!(" PASSWORD {}", crate::secret::REDACTED));
        real.push_str(&format!(" PASSWORD {}", sql::literal(&v)));
        match &role.password {
            Some(old) => undo_sql.push_str(&format!(" PASSWORD {}", sql::literal(old))),
            None => undo_sql.push_str(" PASSWORD NULL"),
        }
    }
    plan.push(Statement {
        shown: shown.replace("WITH  ", "WITH "),
        sql: Secret::new(real),
        undo: Some(Secret::new(undo_sql)),
    });
}

/// Predefined roles that only let a member read statistics and settings:
/// `check` needs pg_monitor, and granting it to the replication role is
/// common and harmless.
const MONITORING_ROLES: &[&str] = &[
    "pg_monitor",
    "pg_read_all_settings",
    "pg_read_all_stats",
    "pg_stat_scan_tables",
];

/// A role that is more than a replication login must not become one by
/// accident: init-master would set its password (copied into every
/// standby's passfile) and LOGIN REPLICATION. The rule: no SUPERUSER,
/// CREATEDB, CREATEROLE or BYPASSRLS, no owned objects, no membership in
/// other roles (but the read-only monitoring ones `check` needs) — what a
/// role pgrepctl created has none of.
fn refuse_shared_role(settings: &Settings, facts: &Facts, role: &RoleFacts) -> Result<()> {
    let mut why = vec![];
    if !role.powers.is_empty() {
        why.push(format!("has {}", role.powers.join(", ")));
    }
    if role.owned_objects > 0 {
        why.push(format!("owns {} database objects", role.owned_objects));
    }
    let mut m: Vec<&String> = facts
        .memberships
        .iter()
        .filter(|r| !MONITORING_ROLES.contains(&r.as_str()))
        .collect();
    if !m.is_empty() {
        m.sort();
        let m: Vec<&str> = m.into_iter().map(String::as_str).collect();
        why.push(format!("is a member of {}", m.join(", ")));
    }
    if why.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        Code::RoleNotDedicated,
        format!(
            "role {:?} is not a dedicated replication role: it {}; init-master would give it LOGIN REPLICATION and the replication password, which every standby keeps in its passfile",
            settings.role,
            why.join(", ")
        ),
    )
    .hint("choose another --replication-user (pgrepctl creates it with LOGIN REPLICATION and nothing else), or add --allow-privileged-role if this role is meant to replicate"))
}
