//! The tool's integration tests, one binary: a module per area, the
//! harness (`common`) compiled once.

mod common;

mod app_binary;
mod database;
mod drift;
mod fargate;
mod iam_policy;
mod image;
mod layers;
mod lock;
mod network;
mod operate;
mod pipeline;
mod plan_json;
mod plan_markdown;
mod policy_analysers;
mod realism;
mod releases;
mod single;
mod status;
mod topology;
mod userdata;
mod userdata_single;
mod workflow;
