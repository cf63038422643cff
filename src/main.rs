//! `userd`: parse the configuration, build the runtime, bind, serve until SIGTERM or SIGINT.

use std::io::Write;
use userd::config::Config;
use userd::server::{self, Settings};
use userd::store::MemoryStore;
use userd::App;

fn main() {
    let config = Config::from_env();
    let threads = config.worker_threads();
    // One thread: a current-thread runtime, with no work-stealing bookkeeping and no wake-ups
    // across threads. More: the work-stealing runtime spreads connections over the cores.
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => fail(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(serve(config));
}

async fn serve(config: Config) {
    let listener = match tokio::net::TcpListener::bind(config.addr).await {
        Ok(l) => l,
        Err(e) => fail(&format!("cannot listen on {}: {e}", config.addr)),
    };
    let addr = listener.local_addr().unwrap_or(config.addr);
    let store = MemoryStore::new(config.shard_count());
    // The application lives as long as the process; see `server::run`.
    let app: &'static App<MemoryStore> = Box::leak(Box::new(App::new(store, config.max_body)));
    let settings = Settings {
        max_connections: config.max_connections,
        header_timeout: config.header_timeout(),
        shutdown_timeout: config.shutdown_timeout(),
    };
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
    server::run(listener, app, settings, server::shutdown_signal()).await;
}

fn fail(message: &str) -> ! {
    eprintln!("userd: {message}");
    std::process::exit(1);
}
