//! Thin: parse the command line, run it, exit with its code.

use clap::Parser;

fn main() {
    let cli = goneaway::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GONEAWAY_LOG")
                .unwrap_or_else(|_| "warn,sqlx=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("goneaway: cannot start the async runtime: {e}");
            std::process::exit(goneaway::error::EXIT_HARNESS);
        }
    };
    let code = runtime.block_on(goneaway::cli::main(cli));
    // Servers and proxies are dropped inside the runtime; shut it down before exiting.
    drop(runtime);
    std::process::exit(code);
}
