//! RDS: databases pass `creating`, `backing-up`, `modifying` and
//! `deleting` ("Viewing Amazon RDS DB instance status"), deletion
//! protection takes effect only once a modification is applied, and a
//! subnet group stays in use while its database is deleting. A parameter
//! group given to a running database applies only when it reboots: until
//! then the database shows it `pending-reboot` ("Associating a DB parameter
//! group with a DB instance", Amazon RDS User Guide: "the DB instance
//! status is pending-reboot ... you must manually reboot the DB instance").

use std::time::Instant;

use super::super::http::Response;
use super::super::xml;
use super::errors::error;
use super::{within, Call, State, Timing};

#[derive(Debug, Clone, Default)]
pub(super) struct Db {
    /// Deletion protection as last asked for.
    protected: bool,
    created: Option<Instant>,
    modified: Option<Instant>,
    protection_lifted: Option<Instant>,
    /// What the last modification applied immediately asked for
    /// (`PendingModifiedValues` members), shown while `modifying`.
    pending: Vec<(String, String)>,
    /// When deleted, and the instance's last XML (shown while `deleting`).
    deleted: Option<(Instant, String)>,
    /// Given a parameter group since it last rebooted.
    pending_reboot: bool,
}

/// Learns from a successful answer: databases created, modified, deleted.
pub(super) fn learn(c: &Call, body: &str, st: &mut State, t: &Timing, now: Instant) {
    match c.op.as_str() {
        "CreateDBInstance" => {
            if let Some(id) = c.get("DBInstanceIdentifier") {
                let d = st.db.entry(id.into()).or_default();
                d.created = Some(now);
                d.protected = c.get("DeletionProtection") == Some("true");
            }
        }
        "ModifyDBInstance" => {
            if let Some(id) = c.get("DBInstanceIdentifier") {
                let d = st.db.entry(id.into()).or_default();
                d.modified = Some(now);
                d.pending = if c.get("ApplyImmediately") == Some("true") {
                    [
                        ("DBInstanceClass", "DBInstanceClass"),
                        ("AllocatedStorage", "AllocatedStorage"),
                        ("MultiAZ", "MultiAZ"),
                        ("EngineVersion", "EngineVersion"),
                        ("BackupRetentionPeriod", "BackupRetentionPeriod"),
                    ]
                    .iter()
                    .filter_map(|(asked, shown)| {
                        Some((shown.to_string(), c.get(asked)?.to_string()))
                    })
                    .collect()
                } else {
                    Vec::new()
                };
                if c.get("DBParameterGroupName").is_some() {
                    d.pending_reboot = true;
                }
                match c.get("DeletionProtection") {
                    // Lifting it takes effect once the modification
                    // is applied; lifting it again changes nothing.
                    Some("false") if d.protected => {
                        d.protected = false;
                        d.protection_lifted = Some(now);
                    }
                    Some("true") => d.protected = true,
                    _ => {}
                }
            }
        }
        "RebootDBInstance" => {
            if let Some(id) = c.get("DBInstanceIdentifier") {
                let d = st.db.entry(id.into()).or_default();
                d.pending_reboot = false;
                d.modified = Some(now);
            }
        }
        "DeleteDBInstance" => {
            if let (Some(id), Some(sp)) = (
                c.get("DBInstanceIdentifier"),
                xml::find(body, "DBInstance", 0),
            ) {
                let elem = xml::set_text(&body[sp.open..sp.end], "DBInstanceStatus", "deleting");
                st.db.entry(id.into()).or_default().deleted = Some((now, elem));
            }
            st.linger_until = Some(now + t.linger);
        }
        _ => {}
    }
}

/// Deletion protection just lifted is still on until the modification is
/// applied.
pub(super) fn protection_lifting(c: &Call, st: &mut State, t: &Timing) -> Option<Response> {
    if c.op == "DeleteDBInstance" {
        let id = c.get("DBInstanceIdentifier").unwrap_or_default();
        if within(
            st.db.get(id).and_then(|d| d.protection_lifted),
            t.db_modifying,
        ) {
            st.count("dependencies");
            return Some(error(
                "rds",
                400,
                "InvalidParameterCombination",
                "Cannot delete protected DB Instance, please disable deletion protection and try again.",
            ));
        }
    }
    None
}

/// A database still `creating` or `backing-up` refuses changes: "The
/// specified DB instance isn't in the available state"
/// (`InvalidDBInstanceState`, ModifyDBInstance and RebootDBInstance, Amazon
/// RDS API reference).
pub(super) fn not_available_yet(c: &Call, st: &mut State, t: &Timing) -> Option<Response> {
    if !matches!(c.op.as_str(), "ModifyDBInstance" | "RebootDBInstance") {
        return None;
    }
    let id = c.get("DBInstanceIdentifier")?;
    if !within(
        st.db.get(id).and_then(|d| d.created),
        t.db_creating + t.db_backing_up,
    ) {
        return None;
    }
    st.count("transitional");
    Some(error(
        "rds",
        400,
        "InvalidDBInstanceState",
        &format!("Database instance {id} is not in available state."),
    ))
}

/// A subnet group is in use while a database of it is deleting.
pub(super) fn subnet_group_in_use(c: &Call, st: &mut State, t: &Timing) -> Option<Response> {
    if c.op == "DeleteDBSubnetGroup" {
        let name = c.get("DBSubnetGroupName").unwrap_or_default().to_string();
        let user = st.db.iter().find_map(|(id, d)| {
            d.deleted.as_ref().and_then(|(at, x)| {
                (at.elapsed() < t.db_deleting
                    && xml::text(x, "DBSubnetGroupName") == Some(name.as_str()))
                .then(|| id.clone())
            })
        });
        if let Some(db) = user {
            st.count("dependencies");
            return Some(error(
                "rds",
                400,
                "InvalidDBSubnetGroupStateFault",
                &format!("Cannot delete the subnet group '{name}' because at least one database instance: {db} is still using it."),
            ));
        }
    }
    None
}

/// The databases of a DescribeDBInstances answer: each identifier, and
/// whether it is `available` with nothing pending.
pub(super) fn reads(body: &str) -> Vec<(String, bool)> {
    let Some(sp) = xml::find(body, "DBInstances", 0) else {
        return Vec::new();
    };
    xml::children(body, sp.inner)
        .into_iter()
        .map(|item| {
            let e = &body[item.open..item.end];
            let pending = xml::find(e, "PendingModifiedValues", 0)
                .is_some_and(|p| e[p.inner.0..p.inner.1].contains('<'));
            let id = xml::text(e, "DBInstanceIdentifier").unwrap_or_default();
            let available = xml::text(e, "DBInstanceStatus") == Some("available");
            (id.to_string(), available && !pending)
        })
        .collect()
}

/// An instance's XML with `pending` as its `PendingModifiedValues`.
fn with_pending(e: &str, pending: &[(String, String)]) -> String {
    let e = xml::remove(e, "PendingModifiedValues");
    let members: String = pending
        .iter()
        .map(|(k, v)| format!("<{k}>{v}</{k}>"))
        .collect();
    match e.rfind("</DBInstance>") {
        Some(close) => format!(
            "{}<PendingModifiedValues>{members}</PendingModifiedValues>{}",
            &e[..close],
            &e[close..]
        ),
        None => e,
    }
}

/// DescribeDBInstances as RDS answers it, with databases being deleted
/// still listed as `deleting`: the answer rewritten, if it changed.
pub(super) fn lifecycle(
    c: &Call,
    body: &str,
    resp: &mut Response,
    st: &State,
    t: &Timing,
) -> Option<String> {
    let mut rewrote = false;
    let mut s = body.to_string();
    // Databases being deleted stay visible as `deleting`.
    let deleting: Vec<(String, String)> = st
        .db
        .iter()
        .filter_map(|(id, d)| {
            d.deleted
                .as_ref()
                .filter(|(at, _)| at.elapsed() < t.db_deleting)
                .map(|(_, x)| (id.clone(), x.clone()))
        })
        .collect();
    let asked = c.get("DBInstanceIdentifier").map(str::to_string);
    for (id, elem) in deleting {
        if asked.as_deref().is_some_and(|a| a != id) {
            continue;
        }
        if resp.status == 404 {
            s = format!("<DescribeDBInstancesResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><DescribeDBInstancesResult><DBInstances>{elem}</DBInstances></DescribeDBInstancesResult><ResponseMetadata><RequestId>realism-0000</RequestId></ResponseMetadata></DescribeDBInstancesResponse>");
            resp.status = 200;
            rewrote = true;
        } else if let Some(sp) = xml::find(&s, "DBInstances", 0) {
            if !s[sp.inner.0..sp.inner.1].contains(&format!("<DBInstanceIdentifier>{id}<")) {
                if sp.inner == (sp.end, sp.end) {
                    s = format!(
                        "{}<DBInstances>{elem}</DBInstances>{}",
                        &s[..sp.open],
                        &s[sp.end..]
                    );
                } else {
                    s = format!("{}{elem}{}", &s[..sp.inner.1], &s[sp.inner.1..]);
                }
                rewrote = true;
            }
        }
    }
    if resp.status < 300 {
        if let Some(sp) = xml::find(&s, "DBInstances", 0) {
            let mut out = String::from(&s[..sp.inner.0]);
            for item in xml::children(&s, sp.inner) {
                let mut e = s[item.open..item.end].to_string();
                let id = xml::text(&e, "DBInstanceIdentifier")
                    .unwrap_or_default()
                    .to_string();
                if let Some(d) = st.db.get(&id) {
                    if d.pending_reboot {
                        e = xml::set_text(&e, "ParameterApplyStatus", "pending-reboot");
                        rewrote = true;
                    }
                    let state = if within(d.created, t.db_creating) {
                        Some("creating")
                    } else if within(d.created, t.db_creating + t.db_backing_up) {
                        Some("backing-up")
                    } else if within(d.modified, t.db_modifying) {
                        Some("modifying")
                    } else {
                        None
                    };
                    if let Some(state) = state {
                        if xml::text(&e, "DBInstanceStatus") == Some("available") {
                            e = xml::set_text(&e, "DBInstanceStatus", state);
                            if state == "creating" {
                                e = xml::remove(&e, "Endpoint");
                            }
                            if state == "modifying" && !d.pending.is_empty() {
                                e = with_pending(&e, &d.pending);
                            }
                            rewrote = true;
                        }
                    }
                }
                out.push_str(&e);
            }
            out.push_str(&s[sp.inner.1..]);
            s = out;
        }
    }
    rewrote.then_some(s)
}
