//! `elbv2:listener`: a port of the load balancer and what it does with
//! requests (forward to the target group, or redirect to HTTPS).

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, ProtocolEnum, RedirectActionConfig,
    RedirectActionStatusCodeEnum,
};
use futures::future::try_join_all;
use serde_json::{json, Value};

use super::target_group::{elb_tags, owned};
use crate::cloud::{api_error, Cloud, CloudError, SdkResultExt};
use crate::engine::calls::{r, w, Call};
use crate::engine::{in_place, replace, AttrSpec, Observed, Repeat, Resolved, ResourceKind};

pub const KIND: &str = "elbv2:listener";

pub struct Listener;

fn action(r: &Resolved) -> Result<Action, CloudError> {
    let a = r.props.get("action").cloned().unwrap_or(Value::Null);
    match a["type"].as_str() {
        Some("forward") => Ok(Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(a["target_group_arn"].as_str().unwrap_or_default())
            .build()),
        Some("redirect") => Ok(Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol(a["protocol"].as_str().unwrap_or("HTTPS"))
                    .port(a["port"].as_str().unwrap_or("443"))
                    .status_code(RedirectActionStatusCodeEnum::from(
                        a["status_code"].as_str().unwrap_or("HTTP_301"),
                    ))
                    .build(),
            )
            .build()),
        _ => Err(CloudError::invalid(
            &r.id,
            format!("unknown listener action {a}"),
        )),
    }
}

fn action_json(a: &Action) -> Value {
    match a.r#type() {
        Some(ActionTypeEnum::Redirect) => {
            let c = a.redirect_config();
            json!({
                "type": "redirect",
                "protocol": c.and_then(|c| c.protocol()).unwrap_or_default(),
                "port": c.and_then(|c| c.port()).unwrap_or_default(),
                "status_code": c.and_then(|c| c.status_code()).map(|s| s.as_str()).unwrap_or_default(),
            })
        }
        _ => {
            json!({"type": "forward", "target_group_arn": a.target_group_arn().unwrap_or_default()})
        }
    }
}

fn observed(id: &str, l: &aws_sdk_elasticloadbalancingv2::types::Listener) -> Observed {
    let arn = l.listener_arn().unwrap_or_default();
    let mut o = Observed::new(KIND, id, arn)
        .prop(
            "load_balancer_arn",
            l.load_balancer_arn().unwrap_or_default(),
        )
        .prop("port", l.port().unwrap_or(0))
        .prop(
            "protocol",
            l.protocol().map(|p| p.as_str()).unwrap_or_default(),
        )
        .prop(
            "action",
            l.default_actions()
                .first()
                .map(action_json)
                .unwrap_or(Value::Null),
        )
        .attr("arn", arn);
    if let Some(c) = l.certificates().first().and_then(|c| c.certificate_arn()) {
        o = o.prop("certificate_arn", c);
    }
    if let Some(p) = l.ssl_policy() {
        o = o.prop("ssl_policy", p);
    }
    o
}

fn certificates(r: &Resolved) -> Option<Vec<Certificate>> {
    r.opt_str("certificate_arn")
        .map(|c| vec![Certificate::builder().certificate_arn(c).build()])
}

/// The API calls this kind makes, and the IAM actions behind them.
#[rustfmt::skip]
const CALLS: &[Call] = &[
    r("elbv2", "describe_listeners", "DescribeListeners", &["elasticloadbalancing:DescribeListeners"]),
    w("elbv2", "create_listener", "CreateListener", &["elasticloadbalancing:CreateListener", "elasticloadbalancing:AddTags"]),
    w("elbv2", "delete_listener", "DeleteListener", &["elasticloadbalancing:DeleteListener"]),
    w("elbv2", "modify_listener", "ModifyListener", &["elasticloadbalancing:ModifyListener"]),
];

#[async_trait]
impl ResourceKind for Listener {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// CreateListener with the same settings returns the existing one ("This operation is idempotent").
    fn on_repeat(&self) -> Repeat {
        Repeat::Answered
    }

    fn calls(&self) -> &'static [Call] {
        CALLS
    }

    fn attributes(&self) -> &'static [AttrSpec] {
        const A: &[AttrSpec] = &[
            replace("load_balancer_arn"),
            replace("port"),
            in_place("protocol"),
            in_place("certificate_arn"),
            in_place("ssl_policy"),
            in_place("action"),
        ];
        A
    }

    async fn read_all(&self, cloud: &Cloud, stack: &str) -> Result<Vec<Observed>, CloudError> {
        let lbs = super::load_balancer::read_owned(cloud, KIND, stack).await?;
        // Listeners are listed per load balancer, all at once.
        let per_lb = try_join_all(lbs.iter().filter_map(|(_, lb)| lb.load_balancer_arn()).map(
            |lb| async move {
                cloud
                    .elbv2
                    .describe_listeners()
                    .load_balancer_arn(lb)
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await
                    .ctx(KIND, "DescribeListeners")
            },
        ))
        .await?;
        let all: Vec<_> = per_lb.into_iter().flatten().collect();
        let mine = owned(
            cloud,
            KIND,
            stack,
            all.iter()
                .filter_map(|l| l.listener_arn().map(str::to_string))
                .collect(),
        )
        .await?;
        Ok(all
            .iter()
            .filter_map(|l| Some(observed(mine.get(l.listener_arn()?)?, l)))
            .collect())
    }

    async fn create(&self, cloud: &Cloud, r: &Resolved) -> Result<Observed, CloudError> {
        // The certificate (just issued), target group and load balancer may
        // be new: ELBv2 answers `CertificateNotFound` / `TargetGroupNotFound`
        // / `LoadBalancerNotFound` until they propagate, having created nothing.
        let req = cloud
            .elbv2
            .create_listener()
            .load_balancer_arn(r.str("load_balancer_arn")?)
            .port(r.i64("port")? as i32)
            .protocol(ProtocolEnum::from(r.str("protocol")?))
            .set_certificates(certificates(r))
            .set_ssl_policy(r.opt_str("ssl_policy").map(str::to_string))
            .default_actions(action(r)?)
            .set_tags(Some(elb_tags(&r.tags)));
        let res = cloud
            .settle(&r.id, "CreateListener", || req.clone().send())
            .await;
        match res {
            Ok(out) => {
                let l = out
                    .listeners()
                    .first()
                    .ok_or_else(|| CloudError::invalid(&r.id, "CreateListener returned nothing"))?;
                Ok(observed(&r.id, l))
            }
            Err(e) => {
                if e.code() != Some("DuplicateListener") {
                    return Err(e);
                }
                // Made by an interrupted run of ours (tagged at creation) or not ours.
                let d = cloud
                    .elbv2
                    .describe_listeners()
                    .load_balancer_arn(r.str("load_balancer_arn")?)
                    .send()
                    .await
                    .ctx(&r.id, "DescribeListeners")?;
                let port = r.i64("port")? as i32;
                let l = d
                    .listeners()
                    .iter()
                    .find(|l| l.port() == Some(port))
                    .cloned();
                let arn = l
                    .as_ref()
                    .and_then(|l| l.listener_arn())
                    .unwrap_or_default()
                    .to_string();
                let mine = owned(cloud, KIND, &r.stack, vec![arn.clone()]).await?;
                match (l, mine.get(&arn)) {
                    (Some(l), Some(id)) if *id == r.id => {
                        let cur = observed(&r.id, &l);
                        self.update(cloud, r, &cur, &[]).await
                    }
                    _ => Err(CloudError::invalid(&r.id, format!("port {port} of the load balancer has a listener this stack does not own"))),
                }
            }
        }
    }

    async fn update(
        &self,
        cloud: &Cloud,
        r: &Resolved,
        current: &Observed,
        _: &[String],
    ) -> Result<Observed, CloudError> {
        // A new certificate or target group may not be visible yet.
        let req = cloud
            .elbv2
            .modify_listener()
            .listener_arn(&current.physical_id)
            .protocol(ProtocolEnum::from(r.str("protocol")?))
            .set_certificates(certificates(r))
            .set_ssl_policy(r.opt_str("ssl_policy").map(str::to_string))
            .default_actions(action(r)?);
        let out = cloud
            .settle(&r.id, "ModifyListener", || req.clone().send())
            .await?;
        Ok(out
            .listeners()
            .first()
            .map(|l| observed(&r.id, l))
            .unwrap_or_else(|| current.clone()))
    }

    async fn delete(&self, cloud: &Cloud, current: &Observed) -> Result<(), CloudError> {
        match cloud
            .elbv2
            .delete_listener()
            .listener_arn(&current.physical_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => super::gone_ok(Err(api_error(&current.id, "DeleteListener", e))),
        }
    }
}
