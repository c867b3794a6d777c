//! The `statsd-proxy` binary: parse flags, set up logging, run the app, map errors to exit codes.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use statsd_proxy::app::{self, MappingSource};
use statsd_proxy::cli::{Cli, Command, MappingCommand};
use statsd_proxy::logging::{LogFormat, Promslog};
use statsd_proxy::mappings;

use tracing_subscriber::EnvFilter;

fn init_logging(cli: &Cli) {
    // --log.level is the level; RUST_LOG, when set, adds tracing directives on top of it (e.g.
    // RUST_LOG=statsd_proxy::relay=debug). Only a bare level there replaces the flag's.
    let level: tracing_subscriber::filter::LevelFilter = cli
        .log_level
        .parse()
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .parse_lossy(std::env::var("RUST_LOG").unwrap_or_default());
    let format = match cli.log_format.as_str() {
        "json" => LogFormat::Json,
        _ => LogFormat::Logfmt,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A failed log write (stderr closed by whoever started us) must not matter: the default
        // reports it with eprintln!, which panics on a broken stderr and took request handling down.
        .log_internal_errors(false)
        .event_format(Promslog { format })
        .init();
}

/// `--check-config` and `mapping check`: load the mapping and report, opening no port.
fn check_config(cli: &Cli) -> ExitCode {
    let source = cli.mapping_source();
    if source == MappingSource::None {
        println!("no mapping (--statsd.default-mapping=none): nothing to check");
        return ExitCode::SUCCESS;
    }
    let checked = mappings::compile(&source).and_then(|mapper| {
        for warning in mapper.warnings() {
            eprintln!("warning: {warning}");
        }
        mappings::strictly(mapper, cli.mapping_strict())
    });
    match checked {
        Ok(mapper) => {
            let warnings = match mapper.warnings().len() {
                0 => String::new(),
                1 => ", 1 warning".to_string(),
                n => format!(", {n} warnings"),
            };
            let rules = mapper.rules().len();
            println!("{}: OK, {rules} mapping rules{warnings}", mapper.source());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `mapping explain`: what each line turns into.
fn explain(cli: &Cli, lines: &[String]) -> ExitCode {
    let mapper = match mappings::compile(&cli.mapping_source()) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let parser = statsd_line::Parser::new(cli.dialects());
    let from_stdin;
    let lines: Vec<&str> = if lines.is_empty() {
        from_stdin = std::io::read_to_string(std::io::stdin()).unwrap_or_default();
        from_stdin
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    } else {
        lines.iter().map(String::as_str).collect()
    };
    for line in lines {
        print!("{}", statsd_proxy::explain::explain(&mapper, parser, line));
    }
    ExitCode::SUCCESS
}

/// The command line, as kingpin reads statsd_exporter's: argument files expanded, and exit status 1
/// for a command line it refuses (clap's is 2); `--help` and `--version` still exit 0.
fn parse_cli() -> Result<Cli, ExitCode> {
    let args = statsd_proxy::cli::argfiles::expand(std::env::args_os()).map_err(|e| {
        eprintln!("statsd-proxy: error: {e}, try --help");
        ExitCode::FAILURE
    })?;
    Cli::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    if cli.version {
        print!("{}", statsd_proxy::telemetry::version_text());
        return ExitCode::SUCCESS;
    }
    match &cli.command {
        Some(Command::Mapping {
            action: MappingCommand::Check,
        }) => return check_config(&cli),
        Some(Command::Mapping {
            action: MappingCommand::Explain { lines },
        }) => {
            return explain(&cli, lines);
        }
        Some(Command::Mapping {
            action: MappingCommand::Lint { file, strict },
        }) => {
            let (report, pass) =
                mappings::lint_report(file.as_deref(), &cli.mapping_source(), *strict);
            print!("{report}");
            return if pass {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        None => {}
    }
    if cli.check_config_requested() {
        return check_config(&cli);
    }
    init_logging(&cli);
    if let (_, Some(warning)) = cli.unixsocket_mode() {
        tracing::warn!("{warning}");
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
    let mut config = cli.config();
    if cli.web_systemd_socket {
        // Taken before the runtime's threads exist: the crate clears LISTEN_FDS and LISTEN_PID from
        // the environment, as systemd's sd_listen_fds does.
        match listenfd::ListenFd::from_env().take_tcp_listener(0) {
            Ok(Some(listener)) => config.web_listener = Some(std::sync::Arc::new(listener)),
            Ok(None) => {
                tracing::error!(
                    "--web.systemd-socket: no socket activation file descriptors found (LISTEN_FDS)"
                );
                return ExitCode::FAILURE;
            }
            Err(e) => {
                tracing::error!(error = %e, "--web.systemd-socket: the passed socket is not a listening TCP socket");
                return ExitCode::FAILURE;
            }
        }
    }
    match runtime.block_on(app::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            ExitCode::FAILURE
        }
    }
}
