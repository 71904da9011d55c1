//! The generic reconciliation engine.
//!
//! Data flows one way: desired resources (a pure function of the stack) and
//! observed resources (read live, by ownership tag) go into [`plan::plan`],
//! a pure diff; the [`executor`] carries the plan out. Nothing here knows any
//! particular AWS resource: a kind of resource is one implementation of
//! [`ResourceKind`] in `crate::resources`.

pub mod calls;
pub mod executor;
pub mod graph;
pub mod markdown;
pub mod plan;
pub mod refs;
mod repeat;
pub mod retry;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::cloud::{Cloud, CloudError, Phase, WaitLimits, DEFAULT_CREATE_TIMEOUT};
use crate::stack::Timeouts;

/// Tag key naming the stack that owns a resource.
pub const TAG_STACK: &str = "bookstore-infra:stack";
/// Tag key naming the logical id of a resource inside its stack.
pub const TAG_ID: &str = "bookstore-infra:id";

/// Properties of a resource: a JSON object whose values may hold references
/// to other resources (see [`refs`]).
pub type Props = Map<String, Value>;

/// Attributes a resource exposes once it exists (`id`, `arn`, `dns_name`...).
pub type Attrs = BTreeMap<String, String>;

/// A resource as the stack wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// Logical id, unique in the stack (`vpc`, `subnet-public-a`...).
    pub id: String,
    /// The kind, as named by [`ResourceKind::kind`].
    pub kind: &'static str,
    /// Wanted properties; references to other resources are resolved at apply time.
    pub props: Props,
    /// Extra ordering edges beyond the references found in `props`.
    pub after: Vec<String>,
}

impl Desired {
    pub fn new(kind: &'static str, id: impl Into<String>, props: Value) -> Self {
        let props = match props {
            Value::Object(m) => m,
            other => panic!("resource properties must be an object, got {other}"),
        };
        Desired {
            id: id.into(),
            kind,
            props,
            after: Vec::new(),
        }
    }

    /// Orders this resource after `id` even though no property refers to it.
    pub fn after(mut self, id: impl Into<String>) -> Self {
        self.after.push(id.into());
        self
    }

    /// Every logical id this resource depends on.
    pub fn deps(&self) -> Vec<String> {
        let mut d = refs::referenced_ids(&Value::Object(self.props.clone()));
        for a in &self.after {
            if !d.contains(a) {
                d.push(a.clone());
            }
        }
        d
    }
}

/// A resource as it exists in the cloud, found by its ownership tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub id: String,
    pub kind: &'static str,
    /// The provider's identifier (`vpc-0abc...`, an ARN, a name).
    pub physical_id: String,
    /// Current properties, in the same shape as the desired ones.
    pub props: Props,
    /// Attributes other resources may refer to. Always holds `id`.
    pub attrs: Attrs,
    /// Exists but is not ready for its dependents yet (still being created,
    /// a certificate awaiting validation...): `up` waits for it even when
    /// nothing about it changes, so an interrupted run resumes.
    pub pending: bool,
}

impl Observed {
    pub fn new(kind: &'static str, id: impl Into<String>, physical_id: impl Into<String>) -> Self {
        let physical_id = physical_id.into();
        let mut attrs = Attrs::new();
        attrs.insert("id".into(), physical_id.clone());
        Observed {
            id: id.into(),
            kind,
            physical_id,
            props: Props::new(),
            attrs,
            pending: false,
        }
    }

    pub fn pending(mut self, pending: bool) -> Self {
        self.pending = pending;
        self
    }

    pub fn prop(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.props.insert(key.to_string(), value.into());
        self
    }

    pub fn attr(mut self, key: &str, value: impl Into<String>) -> Self {
        self.attrs.insert(key.to_string(), value.into());
        self
    }
}

/// How a change to an attribute is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The resource is modified where it stands.
    InPlace,
    /// The resource must be deleted and created again.
    Replace,
}

/// One attribute of a kind and how it changes.
#[derive(Debug, Clone, Copy)]
pub struct AttrSpec {
    pub name: &'static str,
    pub change: Change,
}

pub const fn in_place(name: &'static str) -> AttrSpec {
    AttrSpec {
        name,
        change: Change::InPlace,
    }
}

pub const fn replace(name: &'static str) -> AttrSpec {
    AttrSpec {
        name,
        change: Change::Replace,
    }
}

/// What a kind does when its resource would have to be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplacePolicy {
    /// Replace freely.
    Allow,
    /// Holds data: refuse unless the user names the resource explicitly.
    RequireConfirmation,
}

/// A desired resource with every reference resolved, handed to a kind to create or update.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub id: String,
    pub stack: String,
    /// Fully resolved properties.
    pub props: Props,
    /// The ownership tags to put on the resource (and on anything it creates).
    pub tags: Vec<(String, String)>,
    /// An idempotency token derived from stack and logical id (at most 64 chars).
    pub token: String,
}

impl Resolved {
    pub fn str(&self, key: &str) -> Result<&str, CloudError> {
        self.props
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| CloudError::invalid(&self.id, format!("property `{key}` missing")))
    }

    pub fn opt_str(&self, key: &str) -> Option<&str> {
        self.props.get(key).and_then(Value::as_str)
    }

    pub fn i64(&self, key: &str) -> Result<i64, CloudError> {
        self.props
            .get(key)
            .and_then(Value::as_i64)
            .ok_or_else(|| CloudError::invalid(&self.id, format!("property `{key}` missing")))
    }

    pub fn bool(&self, key: &str) -> bool {
        self.props
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Deserialises the properties into a kind's own typed struct.
    pub fn typed<T: serde::de::DeserializeOwned>(&self) -> Result<T, CloudError> {
        serde_json::from_value(Value::Object(self.props.clone()))
            .map_err(|e| CloudError::invalid(&self.id, format!("bad properties: {e}")))
    }
}

/// What a create repeated after a lost answer meets, by kind. In every case
/// the executor ends up with one resource per logical id:
/// - `Answered`: AWS answers the repeat with the first answer (a client
///   token, or an API that is idempotent by name and settings).
/// - `Refused`: AWS refuses the repeat as "already exists" or a conflict (a
///   name or CIDR unique in its scope); the executor reads the kind and
///   adopts what carries this resource's tags, refusing anything else.
/// - `Twin`: AWS makes a second resource (CreateVpc, AllocateAddress have
///   no token and no unique name); the executor reads the kind after the
///   create and deletes the resources carrying this resource's tags that
///   neither existed before the run nor are the one the create returned.
///   One a list does not show yet is surplus to the next plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    Answered,
    Refused,
    Twin,
}

/// A kind of resource: the only code that talks to the provider's API.
///
/// `read_all` reads every resource of the kind owned by the stack in one
/// batch (filtered by tag where the API allows, after reading otherwise);
/// the engine compares, orders and calls create/update/delete.
#[async_trait]
pub trait ResourceKind: Send + Sync {
    /// Stable name of the kind, e.g. `ec2:vpc`.
    fn kind(&self) -> &'static str;

    /// The attributes compared by `diff`, and how each is changed.
    /// A property not listed here is still passed to create but never diffed.
    fn attributes(&self) -> &'static [AttrSpec];

    /// Whether the live value `have` of attribute `attr` is what `want`
    /// asks for: by default [`same`] (lists as multisets); a kind whose
    /// values mean more than their JSON (policy documents, where a string
    /// and a one-element list say the same) compares them its own way.
    fn same(&self, _attr: &str, want: &Value, have: Option<&Value>) -> bool {
        same(want, have)
    }

    fn replace_policy(&self) -> ReplacePolicy {
        ReplacePolicy::Allow
    }

    /// The API calls this kind makes (its file's own rows of the CI
    /// policy's table, see `iam_policy`); calls shared with other parts of
    /// the tool are in that table's shared rows.
    fn calls(&self) -> &'static [calls::Call] {
        &[]
    }

    /// How long a wait on a resource of this kind may last in `phase`,
    /// given the stack's `[timeouts]`: a kind that takes long to create
    /// names its own key there.
    fn timeout(&self, t: &Timeouts, phase: Phase) -> Duration {
        match phase {
            Phase::Create | Phase::Rollout => DEFAULT_CREATE_TIMEOUT,
            Phase::Delete => t.delete,
        }
    }

    /// Whether a replacement may create the new resource while the old one
    /// still exists (no unique name or exclusive address in the way), given
    /// what changes. Then what refers to the old one moves to the new one
    /// before the old one is deleted. Otherwise the old one goes first, and
    /// whatever refers to it in a way that keeps it from being deleted (see
    /// [`ResourceKind::reference_blocks_deletion`]) is replaced with it.
    fn create_before_destroy(&self, _changes: &[plan::AttrDiff], _current: &Observed) -> bool {
        false
    }

    /// Whether this kind's reference to another resource, through attribute
    /// `attr`, keeps that resource from being deleted (a listener's target
    /// group, a load balancer's subnets). References the cloud does not
    /// enforce (a route to a NAT gateway, a DNS alias) do not.
    fn reference_blocks_deletion(&self, _attr: &str) -> bool {
        true
    }

    /// What an in-place update with `changes` means for the service, when
    /// more than its attributes say (shown with the step in the plan).
    fn update_note(&self, _changes: &[plan::AttrDiff]) -> Option<String> {
        None
    }

    /// Attributes an in-place update gives new values (so what refers to
    /// them changes too), like a launch template's latest version.
    fn attrs_changed_by_update(&self) -> &'static [&'static str] {
        &[]
    }

    /// What AWS does when this kind's create is sent again after its
    /// answer was lost (the SDK retries the very same request); the
    /// executor makes every create safe to repeat from it (see [`Repeat`]).
    /// The default assumes the worst: a second resource.
    fn on_repeat(&self) -> Repeat {
        Repeat::Twin
    }

    /// Every resource of this kind tagged with the stack's name.
    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError>;

    /// Creates the resource and returns it as observed. Tag at creation, and
    /// send `r.token` where the API takes a client token: what a repeated
    /// create meets is then [`ResourceKind::on_repeat`]'s to say, and the
    /// executor's to handle.
    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError>;

    /// Applies in-place changes; `changed` lists the attribute names that differ.
    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        changed: &[String],
    ) -> Result<Observed, CloudError>;

    /// Deletes the resource and waits until it is gone.
    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError>;

    /// Waits until a just created or updated resource is ready for its dependents.
    async fn wait_ready(&self, _cloud: &Cloud, current: Observed) -> Result<Observed, CloudError> {
        Ok(current)
    }
}

/// The set of kinds the engine may use, looked up by name.
pub struct Registry {
    kinds: BTreeMap<&'static str, Box<dyn ResourceKind>>,
    order: Vec<&'static str>,
}

impl Registry {
    pub fn new() -> Self {
        Registry {
            kinds: BTreeMap::new(),
            order: Vec::new(),
        }
    }

    pub fn register(&mut self, kind: Box<dyn ResourceKind>) {
        let name = kind.kind();
        self.order.push(name);
        self.kinds.insert(name, kind);
    }

    pub fn get(&self, kind: &str) -> Option<&dyn ResourceKind> {
        self.kinds.get(kind).map(|k| k.as_ref())
    }

    /// Kinds in registration order (roughly dependency order).
    pub fn kinds(&self) -> impl Iterator<Item = &dyn ResourceKind> {
        self.order.iter().map(|n| self.kinds[n].as_ref())
    }

    /// Every kind's wait limits under the stack's `[timeouts]`.
    pub fn wait_limits(&self, t: &Timeouts) -> WaitLimits {
        let phases = [Phase::Create, Phase::Rollout, Phase::Delete];
        WaitLimits::new(
            self.kinds()
                .flat_map(|k| phases.map(|p| (k.kind(), p, k.timeout(t, p)))),
            t.delete,
        )
    }

    /// Position of a kind in registration order; later kinds depend on earlier ones.
    pub fn rank(&self, kind: &str) -> usize {
        self.order
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(usize::MAX)
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `changes` changes attribute `name`.
pub fn changes(changes: &[plan::AttrDiff], name: &str) -> bool {
    changes.iter().any(|c| c.name == name)
}

/// Derives a client token from stack and logical id: stable across runs,
/// distinct across stacks, at most 64 characters.
pub fn client_token(stack: &str, id: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{stack}\u{0}{id}").as_bytes());
    format!("bsi-{}", &hex::encode(h)[..40])
}

/// The client token of one create: the same for the same stack, logical id
/// and resolved properties (a run interrupted after its request repeats
/// it, and AWS answers with what it made), another when the properties
/// differ. A resource made again after its earlier self was deleted (a
/// switch of runtime and back, a replacement) mostly has other
/// properties, and must not be answered with the deleted one: services
/// keep a token's answer for a while, and refuse other parameters under
/// it (`IdempotentParameterMismatch`).
pub fn create_token(stack: &str, id: &str, props: &serde_json::Map<String, Value>) -> String {
    use sha2::{Digest, Sha256};
    let body = serde_json::to_string(props).unwrap_or_default();
    let h = Sha256::digest(format!("{stack}\u{0}{id}\u{0}{body}").as_bytes());
    format!("bsi-{}", &hex::encode(h)[..40])
}

/// The ownership tags of a resource.
pub fn owner_tags(stack: &str, id: &str) -> Vec<(String, String)> {
    vec![
        (TAG_STACK.to_string(), stack.to_string()),
        (TAG_ID.to_string(), id.to_string()),
        ("Name".to_string(), format!("{stack}-{id}")),
    ]
}

impl fmt::Display for Desired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.id, self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_are_stable_and_distinct() {
        let a = client_token("demo", "nat-a");
        assert_eq!(a, client_token("demo", "nat-a"));
        assert_ne!(a, client_token("demo", "nat-b"));
        assert_ne!(a, client_token("prod", "nat-a"));
        assert!(a.len() <= 64);
    }

    #[test]
    fn deps_come_from_references_and_explicit_edges() {
        let d = Desired::new(
            "k",
            "subnet",
            json!({"vpc_id": refs::r("vpc"), "cidr": "10.0.0.0/24"}),
        )
        .after("igw");
        assert_eq!(d.deps(), vec!["vpc".to_string(), "igw".to_string()]);
    }
}

/// Compares a wanted value with a current one. Lists are compared as
/// multisets: the cloud returns rules, routes and subnet lists in its own order.
pub fn same(want: &serde_json::Value, have: Option<&serde_json::Value>) -> bool {
    match have {
        Some(h) => canonical(want) == canonical(h),
        None => want.is_null(),
    }
}

fn canonical(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Array(a) => {
            let mut items: Vec<Value> = a.iter().map(canonical).collect();
            items.sort_by_cached_key(|x| x.to_string());
            Value::Array(items)
        }
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), canonical(x))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod same_tests {
    use super::same;
    use serde_json::json;

    #[test]
    fn lists_compare_as_sets_and_scalars_exactly() {
        assert!(same(&json!(["b", "a"]), Some(&json!(["a", "b"]))));
        assert!(!same(&json!(["a"]), Some(&json!(["a", "b"]))));
        assert!(same(
            &json!([{"p": 1}, {"p": 2}]),
            Some(&json!([{"p": 2}, {"p": 1}]))
        ));
        assert!(!same(&json!(true), Some(&json!(false))));
        assert!(!same(&json!(1), None));
        assert!(same(&json!(null), None));
    }
}
