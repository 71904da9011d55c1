//! Logs: JSON lines (`BOOKSTORE_LOG_FORMAT=json`, as on AWS) or text, to
//! stderr, filtered by `BOOKSTORE_LOG`. Each response is logged once, at
//! info, within its request's span (see [`crate::startup::app`]).

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_env("BOOKSTORE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    if std::env::var("BOOKSTORE_LOG_FORMAT").as_deref() == Ok("json") {
        tracing_subscriber::fmt()
            .json()
            // The request's span (its id, method, path, route) once.
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
}
