//! Logging. Text for people, one JSON object per line for collectors; the
//! filter comes from `RUST_LOG`.

use tracing_subscriber::EnvFilter;

use crate::config::{ConfigError, LogFormat};

pub fn init(format: LogFormat, filter: &str) -> Result<(), ConfigError> {
    let filter = EnvFilter::try_new(filter).map_err(|e| ConfigError {
        variable: "RUST_LOG",
        problem: e.to_string(),
    })?;
    // Colours for a terminal only; files and log collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    }
    // Already initialised (tests start many servers in one process): keep it.
    .ok();
    Ok(())
}
