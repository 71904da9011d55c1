//! bookstore-infra: declarative provisioning of the scaled bookstore
//! deployment on AWS. A stack file describes the deployment; `up` reconciles
//! the live cloud with it, `diff` shows the plan, `destroy` removes it all.

pub mod cloud;
pub mod cost;
pub mod engine;
pub mod iam_policy;
pub mod lifecycle;
pub mod lock;
pub mod ops;
pub mod planfile;
pub mod progress;
pub mod resources;
pub mod stack;
pub mod topology;
pub mod userdata;
