//! `bookstore`: the web shop every instance of the deployment runs.
//!
//! - [`config`]: the command line; [`startup`]: router, layers, serving;
//!   [`listen`]: the sockets (bound, or passed by systemd); [`drain`]: the
//!   accept loops and stopping without losing a request; [`telemetry`] and
//!   [`metrics`]: logs and counters.
//! - [`routes`]: one module per feature, each with its `router()`;
//!   [`views`]: the HTML templates; [`db`]: one module per table, one
//!   function per query; [`domain`]: validated values.
//! - [`session`], [`extract`]: who is asking, and forms that carry the
//!   CSRF check; [`anon`]: signed cookies instead of rows for anonymous
//!   visitors; [`error`]: what errors answer; [`password`], [`limit`]:
//!   password hashing and the limits around it; [`tokens`]: API tokens.
//! - [`tls`]: HTTPS served by the app itself, with certificates from an
//!   ACME CA (a deployment without a load balancer).

pub mod anon;
pub mod assets;
pub mod cache;
pub mod config;
pub mod db;
pub mod domain;
pub mod drain;
pub mod error;
pub mod extract;
pub mod limit;
pub mod listen;
pub mod metrics;
pub mod password;
pub mod routes;
pub mod session;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod tokens;
pub mod views;
