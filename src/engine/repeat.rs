//! Making every create and change safe to repeat (see [`Repeat`]): what
//! the executor does when AWS did the work of a call whose answer was lost
//! and the SDK's retry met that work.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::executor::Executor;
use super::{Observed, Repeat, Resolved, ResourceKind};
use crate::cloud::CloudError;

/// The attributes of `kind` whose wanted value in `r` differs from `cur`'s.
fn changed(kind: &dyn ResourceKind, r: &Resolved, cur: &Observed) -> Vec<String> {
    kind.attributes()
        .iter()
        .filter(|a| {
            r.props
                .get(a.name)
                .is_some_and(|want| !kind.same(a.name, want, cur.props.get(a.name)))
        })
        .map(|a| a.name.to_string())
        .collect()
}

impl Executor<'_> {
    /// How long a resource just made may stay missing from its kind's
    /// list (AWS's lists lag behind its creates): the propagation window,
    /// scaled like every wait by the poll interval.
    fn list_lag(&self) -> Duration {
        (self.cloud.poll * 24).min(crate::cloud::PROPAGATION_WINDOW)
    }

    /// Reads `kind` until `seen` finds what it looks for in the read, for
    /// up to [`Executor::list_lag`]; `None` when it never did.
    async fn read_until<T>(
        &self,
        kind: &dyn ResourceKind,
        mut seen: impl FnMut(Vec<Observed>) -> Option<T>,
    ) -> Result<Option<T>, CloudError> {
        let start = Instant::now();
        loop {
            if let Some(found) = seen(kind.read_all(self.cloud, self.stack).await?) {
                return Ok(Some(found));
            }
            if start.elapsed() >= self.list_lag() {
                return Ok(None);
            }
            tokio::time::sleep(self.cloud.poll).await;
        }
    }

    /// A create refused because what it makes exists already: the work of
    /// this very create whose answer was lost, of an interrupted run, or
    /// someone else's. Reads the kind until the thing shows; adopts it
    /// (updating what differs) when its tags say it is this resource of
    /// this stack; otherwise refuses, naming the answer.
    pub(super) async fn adopt(
        &self,
        kind: &dyn ResourceKind,
        r: &Resolved,
        refused: CloudError,
        before: &BTreeMap<&str, &Observed>,
    ) -> Result<Observed, CloudError> {
        let rep = &self.cloud.reporter;
        rep.status(
            &r.id,
            &format!(
                "exists already ({}): looking for it among the stack's",
                refused.code().unwrap_or_default()
            ),
        );
        let found = self
            .read_until(kind, |all| {
                let mut ours: Vec<Observed> = all.into_iter().filter(|o| o.id == r.id).collect();
                // Of twins (a create that made one, then failed in a later
                // step), the one most like the wanted resource first.
                ours.sort_by_key(|o| changed(kind, r, o).len());
                (!ours.is_empty()).then_some(ours)
            })
            .await?;
        let Some(mut ours) = found else {
            return Err(CloudError::invalid(
                &r.id,
                format!(
                    "{refused}; nothing of stack {} carries this resource's tags, so what \
                     exists is someone else's and is left alone: remove it, or change the \
                     stack file so that the names differ",
                    self.stack
                ),
            ));
        };
        let cur = ours.remove(0);
        rep.status(
            &r.id,
            &format!("{} carries its tags: adopted", cur.physical_id),
        );
        if kind.on_repeat() == Repeat::Twin {
            self.delete_twins(&cur, ours, before).await?;
        }
        if changed(kind, r, &cur).is_empty() {
            return Ok(cur);
        }
        self.update(kind, r, &cur).await
    }

    /// Brings `cur` to `r`'s properties. A change answered "already exists"
    /// (a rule, a route: the SDK's retry of a change whose answer was lost
    /// met the change itself) is done once a read shows no difference left;
    /// otherwise AWS's answer stands.
    pub(super) async fn update(
        &self,
        kind: &dyn ResourceKind,
        r: &Resolved,
        cur: &Observed,
    ) -> Result<Observed, CloudError> {
        let refused = match kind
            .update(self.cloud, r, cur, &changed(kind, r, cur))
            .await
        {
            Err(e) if e.is_already_exists() => e,
            other => return other,
        };
        let settled = self
            .read_until(kind, |all| {
                all.into_iter()
                    .find(|o| o.physical_id == cur.physical_id)
                    .filter(|o| changed(kind, r, o).is_empty())
            })
            .await?;
        let Some(now) = settled else {
            return Err(refused);
        };
        self.cloud.reporter.status(
            &r.id,
            &format!(
                "{}: the change is in place",
                refused.code().unwrap_or_default()
            ),
        );
        Ok(now)
    }

    /// After a create of a kind whose repeat makes a second resource (see
    /// [`Repeat::Twin`]): reads the kind until the list shows what was just
    /// made (lists lag behind creates, and a twin made moments earlier by
    /// the lost first attempt shows no sooner), then deletes its twins.
    pub(super) async fn sweep_twins(
        &self,
        kind: &dyn ResourceKind,
        made: &Observed,
        before: &BTreeMap<&str, &Observed>,
    ) -> Result<(), CloudError> {
        let caught_up = self
            .read_until(kind, |all| {
                all.iter()
                    .any(|o| o.physical_id == made.physical_id)
                    .then_some(all)
            })
            .await?;
        let listed = match caught_up {
            Some(all) => all,
            None => kind.read_all(self.cloud, self.stack).await?,
        };
        self.delete_twins(made, listed, before).await
    }

    /// Deletes, of `listed`, what carries `made`'s tags but is neither
    /// `made` nor something that existed `before` the run.
    async fn delete_twins(
        &self,
        made: &Observed,
        listed: Vec<Observed>,
        before: &BTreeMap<&str, &Observed>,
    ) -> Result<(), CloudError> {
        let twins = listed.into_iter().filter(|o| {
            o.id == made.id
                && o.physical_id != made.physical_id
                && !before.contains_key(o.physical_id.as_str())
        });
        for twin in twins {
            // Reported on a line of its own.
            let twin = Observed {
                id: format!("{} (twin)", twin.id),
                ..twin
            };
            self.delete(&twin, "a repeated create made a second one: deleting")
                .await?;
        }
        Ok(())
    }
}
