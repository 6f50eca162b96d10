use clap::Parser;

/// mimalloc: faster than glibc's malloc on the acknowledgement path (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    drbot::memory::trim();
    drbot::telemetry::init();
    let cli = drbot::cli::Cli::parse();
    match drbot::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.0);
            std::process::ExitCode::FAILURE
        }
    }
}
