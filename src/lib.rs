//! bookstore-infra: declarative provisioning of the scaled bookstore
//! deployment on AWS. A stack file describes the deployment; `up` reconciles
//! the live cloud with it, `diff` shows the plan, `destroy` removes it all.

pub mod cloud;
pub mod cost;
pub mod engine;
pub mod exec;
pub mod iam_policy;
pub mod image;
pub mod lifecycle;
pub mod lock;
pub mod logs;
pub mod pipeline;
pub mod planfile;
pub mod progress;
pub mod releases;
pub mod resources;
pub mod stack;
pub mod status;
pub mod terminal;
pub mod topology;
pub mod userdata;
