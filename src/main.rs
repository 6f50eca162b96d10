use clap::Parser;

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
