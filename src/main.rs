//! `userd`: parse the configuration, open the store (recovering it from disk unless
//! `--in-memory`), build the runtime, bind, serve until SIGTERM or SIGINT.

use std::io::Write;
use userd::config::Config;
use userd::server::{self, Settings};
use userd::store::{LogStore, MemoryStore, UserStore};
use userd::App;

fn main() {
    let config = Config::from_env();
    let threads = config.worker_threads();
    // One thread: a current-thread runtime, with no work-stealing bookkeeping and no wake-ups
    // across threads. More: the work-stealing runtime spreads connections over the cores.
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
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
    let memory = MemoryStore::new(config.shard_count());
    if config.in_memory {
        return run(&runtime, &config, memory);
    }
    match LogStore::open(&config.data_dir, memory, config.log_options()) {
        Ok(store) => run(&runtime, &config, store),
        Err(e) => fail(&format!("cannot open the data directory: {e}")),
    }
}

/// Serves `store` until SIGTERM or SIGINT, then closes it: every store the same way.
fn run<S: UserStore>(runtime: &tokio::runtime::Runtime, config: &Config, store: S) {
    let app = runtime.block_on(serve(config, store));
    // Commit what is queued and fsync before the process ends (it matters for the durable
    // store's --sync interval and none; with always everything acknowledged is on disk).
    app.store().close();
}

/// Binds, serves `store` until SIGTERM or SIGINT, and returns the application.
async fn serve<S: UserStore>(config: &Config, store: S) -> &'static App<S> {
    let listener = match tokio::net::TcpListener::bind(config.addr).await {
        Ok(l) => l,
        Err(e) => fail(&format!("cannot listen on {}: {e}", config.addr)),
    };
    let addr = listener.local_addr().unwrap_or(config.addr);
    // The application lives as long as the process; see `server::run`.
    let app: &'static App<S> = Box::leak(Box::new(App::new(store, config.max_body)));
    let settings = Settings {
        max_connections: config.max_connections,
        header_timeout: config.header_timeout(),
        shutdown_timeout: config.shutdown_timeout(),
    };
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
    server::run(listener, app, settings, server::shutdown_signal()).await;
    app
}

fn fail(message: &str) -> ! {
    eprintln!("userd: {message}");
    std::process::exit(1);
}
