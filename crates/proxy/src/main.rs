//! The `statsd-proxy` binary: parse flags, set up logging, run the app, map errors to exit codes.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use statsd_proxy::{app, cli::Cli};
use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

fn init_logging(cli: &Cli) {
    // RUST_LOG, when set, refines --log.level (e.g. RUST_LOG=statsd_proxy=debug).
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cli.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A failed log write (stderr closed by whoever started us) must not matter: the default
        // reports it with eprintln!, which panics on a broken stderr and took request handling down.
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal());
    if cli.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// `--check-config`: load the mapping file and report, opening no port.
fn check_config(cli: &Cli) -> ExitCode {
    let (loaded, source) = match (&cli.mapping_config, cli.default_mapping.as_str()) {
        (Some(path), _) => (
            statsd_mapping::Mapper::from_file(path),
            path.display().to_string(),
        ),
        (None, "none") => {
            println!("no mapping (--statsd.default-mapping=none): nothing to check");
            return ExitCode::SUCCESS;
        }
        (None, _) => (
            statsd_mapping::Mapper::from_yaml(
                statsd_proxy::mappings::MASTODON_YAML,
                statsd_proxy::mappings::MASTODON_SOURCE,
            ),
            statsd_proxy::mappings::MASTODON_SOURCE.to_string(),
        ),
    };
    match loaded {
        Ok(mapper) => {
            for warning in mapper.warnings() {
                eprintln!("warning: {warning}");
            }
            println!("{source}: OK, {} mapping rules", mapper.rules().len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.check_config {
        return check_config(&cli);
    }
    init_logging(&cli);
    if let Some(problem) = cli.unsupported() {
        tracing::error!("{problem}");
        return ExitCode::FAILURE;
    }
    for flag in cli.without_effect() {
        tracing::debug!(%flag, "flag accepted for compatibility with statsd_exporter; it has no effect here");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(app::run(cli.config())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            ExitCode::FAILURE
        }
    }
}
