//! The app's integration tests, one binary: a module per feature area,
//! the harness (`common`) compiled once.

#[macro_use]
mod common;

mod account;
mod api;
mod api_limits;
mod app;
mod attack;
mod books;
mod browser;
mod contract;
mod database;
mod freshness;
mod handover;
mod platform;
mod purchases;
mod recovery;
mod tls;
mod tokens;
