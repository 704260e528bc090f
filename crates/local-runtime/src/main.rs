//! `spin-local`: a local/test runtime for this project's Spin components.
//!
//! It runs the same `.wasm` files as `spin up` (Spin 3.6.3) on the same
//! wasmtime version, for machines without the Spin CLI and for the end-to-end
//! tests. It is not a production runtime: production runs on SpinKube.
//! See docs/local-runtime.md.

mod allowed_hosts;
mod engine;
mod host;
mod http_trigger;
mod logs;
mod manifest;
mod outbound_http;
mod redis_trigger;
mod routes;
mod runtime_config;
mod variables;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use wasmtime_wasi_http::bindings::ProxyPre;

use crate::allowed_hosts::AllowedHosts;
use crate::host::redis_handler::RedisHandlerPre;
use crate::host::ComponentShared;
use crate::http_trigger::{HttpComponent, HttpServer};
use crate::logs::ComponentStdio;
use crate::manifest::App;
use crate::redis_trigger::{RedisComponent, Subscriber};
use crate::routes::Router;
use crate::variables::{Provider, Template};

#[derive(Parser, Debug)]
#[command(
    name = "spin-local",
    version,
    about = "Local/test runtime for this project's Spin 3.6 components (wasmtime 42, like Spin 3.6.3).",
    long_about = "Local/test runtime for this project's Spin 3.6 components.\n\n\
        Runs the same .wasm files as `spin up` on the wasmtime version Spin 3.6.3 uses: \
        HTTP and Redis triggers, WASI, outbound HTTP and Redis with allowed_outbound_hosts, \
        and Spin variables. It exists for tests and for machines without the Spin CLI; \
        it is not a production runtime (production runs on SpinKube). \
        See docs/local-runtime.md for what it implements and how it differs from Spin."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the application, like `spin up` (a local/test runtime: production runs on SpinKube).
    Up(UpArgs),
}

#[derive(clap::Args, Debug)]
struct UpArgs {
    /// The manifest (spin.toml) or a directory containing one.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    from: PathBuf,

    /// Runtime config file (variable providers), like `spin up --runtime-config-file`.
    #[arg(long = "runtime-config-file", env = "RUNTIME_CONFIG_FILE")]
    runtime_config_file: Option<PathBuf>,

    /// Address for the HTTP trigger.
    #[arg(long = "listen", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,

    /// Run only this component and its triggers (repeatable), like
    /// `spin up --component-id` and SpinKube's `components:`.
    #[arg(
        short = 'c',
        long = "component-id",
        alias = "component",
        value_name = "ID"
    )]
    components: Vec<String>,

    /// Set application variables, overriding every provider (repeatable):
    /// NAME=VALUE, NAME=@FILE (the file's text), @FILE.json or @FILE.toml.
    #[arg(long = "variable", value_name = "NAME=VALUE")]
    variables: Vec<String>,

    /// The most bytes an instance's linear memory may grow to, like `spin up
    /// --max-instance-memory` (a `memory.grow` beyond it fails).
    #[arg(long = "max-instance-memory", env = "SPIN_MAX_INSTANCE_MEMORY")]
    max_instance_memory: Option<usize>,

    /// Pass an environment variable (KEY=VALUE) to all components, like `spin up --env`.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = variables::parse_kv)]
    env: Vec<(String, String)>,

    /// Directory for component stdout/stderr logs; empty disables them.
    /// Default: .spin/logs beside the manifest.
    #[arg(short = 'L', long = "log-dir", env = "SPIN_LOG_DIR")]
    log_dir: Option<String>,

    /// Print output only for these components (repeatable); default: all.
    #[arg(long = "follow", value_name = "ID")]
    follow: Vec<String>,

    /// Do not copy component output to the terminal.
    #[arg(short = 'q', long = "quiet", conflicts_with = "follow")]
    quiet: bool,

    /// Do not cache compiled components (default cache: .spin/cache beside the manifest).
    #[arg(long = "disable-cache")]
    disable_cache: bool,

    /// Do not use wasmtime's pooling instance allocator.
    #[arg(long = "disable-pooling")]
    disable_pooling: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn manifest_path(from: &Path) -> Result<PathBuf> {
    let path = if from.is_dir() {
        from.join("spin.toml")
    } else {
        from.to_path_buf()
    };
    if !path.exists() {
        bail!(
            "manifest {} not found. Run from the repository root or pass --from <spin.toml>",
            path.display()
        );
    }
    Ok(path)
}

/// Resolves every component's templated settings once, at start-up.
fn component_shared(
    app: &App,
    values: &HashMap<String, String>,
    log_dir: Option<&Path>,
    follow: &dyn Fn(&str) -> bool,
    extra_env: &[(String, String)],
    max_instance_memory: Option<usize>,
) -> Result<BTreeMap<String, Arc<ComponentShared>>> {
    let mut out = BTreeMap::new();
    for (id, c) in &app.components {
        let hosts = c
            .allowed_outbound_hosts
            .iter()
            .map(|t| t.render(values))
            .collect::<Result<Vec<_>>>()?;
        let allowed_hosts = AllowedHosts::parse(&hosts).with_context(|| {
            format!("`component.{id}.allowed_outbound_hosts` is invalid after variable expansion")
        })?;
        let variables = variables::resolve_component(&c.variables, values)
            .with_context(|| format!("`component.{id}.variables`"))?;
        let mut environment: Vec<(String, String)> = c
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        environment.extend(extra_env.iter().cloned());
        out.insert(
            id.clone(),
            Arc::new(ComponentShared {
                id: id.clone(),
                variables,
                allowed_hosts,
                environment,
                stdout: ComponentStdio::open(log_dir, id, "stdout", follow(id))?,
                stderr: ComponentStdio::open(log_dir, id, "stderr", follow(id))?,
                max_instance_memory,
            }),
        );
    }
    Ok(out)
}

async fn up(args: UpArgs) -> Result<()> {
    let started = Instant::now();
    let manifest = manifest_path(&args.from)?;
    let mut app = App::load(&manifest)?;
    eprintln!("Starting {} from {}", app.name, app.path.display());
    app.retain_components(&args.components)?;
    if app.http_triggers.is_empty() && app.redis_triggers.is_empty() {
        bail!("No triggers in app");
    }
    for f in &args.follow {
        if !app.components.contains_key(f) {
            bail!("--follow {f:?}: no such component");
        }
    }

    // Variables: --variable, the runtime config's providers, then Spin's default provider.
    let mut providers = Vec::new();
    if !args.variables.is_empty() {
        let values = variables::cli_variables(&args.variables)?;
        for k in values.keys() {
            if !app.variables.contains_key(k) {
                bail!("--variable {k}: the manifest declares no variable {k:?}");
            }
        }
        providers.push(Provider::Static {
            name: "--variable".into(),
            values,
        });
    }
    providers.extend(runtime_config::providers(
        args.runtime_config_file.as_deref(),
    )?);
    let values = variables::resolve_all(&app.variables, &providers, &|k| std::env::var(k).ok())?;

    // Logs.
    let log_dir = match &args.log_dir {
        Some(d) if d.is_empty() => None,
        Some(d) => Some(PathBuf::from(d)),
        None => Some(app.dir.join(".spin").join("logs")),
    };
    if let Some(dir) = &log_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("Failed to create log dir \"{}\"", dir.display()))?;
        eprintln!("Logging component stdio to \"{}/\"", dir.display());
    }
    let follow_set: Vec<String> = args.follow.clone();
    let quiet = args.quiet;
    let follow =
        move |id: &str| !quiet && (follow_set.is_empty() || follow_set.iter().any(|f| f == id));

    let shared = component_shared(
        &app,
        &values,
        log_dir.as_deref(),
        &follow,
        &args.env,
        args.max_instance_memory,
    )?;

    // Resolve the Redis trigger addresses and channels before compiling anything.
    let mut subscribers: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for t in &app.redis_triggers {
        let address_template = t
            .address
            .as_deref()
            .or(app.redis_address.as_deref())
            .ok_or_else(|| anyhow!("no Redis address for the trigger of {}", t.component))?;
        let address = Template::new(address_template)?.render(&values)?;
        if address.starts_with("rediss://") {
            bail!("the Redis trigger cannot use TLS (rediss://), as in Spin 3.x; use a redis:// address");
        }
        let channel = Template::new(&t.channel)?.render(&values)?;
        subscribers
            .entry(address)
            .or_default()
            .entry(channel)
            .or_default()
            .push(t.component.clone());
    }

    // Bind the port early so that a port in use fails fast.
    let listener = if app.http_triggers.is_empty() {
        None
    } else {
        Some(http_trigger::bind(args.listen).await?)
    };

    // Compile each component once and pre-instantiate it.
    let cache_dir = (!args.disable_cache).then(|| app.dir.join(".spin").join("cache"));
    let engine = engine::engine(&engine::EngineOptions {
        cache_dir: cache_dir.as_deref(),
        pooling: !args.disable_pooling,
    })?;
    let linker = engine::linker(&engine)?;
    let http_ids: Vec<&String> = app.http_triggers.iter().map(|t| &t.component).collect();
    let redis_ids: Vec<&String> = app.redis_triggers.iter().map(|t| &t.component).collect();
    let mut http_components = HashMap::new();
    let mut redis_components = HashMap::new();
    for (id, c) in &app.components {
        let is_http = http_ids.contains(&id);
        let is_redis = redis_ids.contains(&id);
        if !is_http && !is_redis {
            continue;
        }
        let component = engine::load_component(&engine, id, &c.source, &c.source_raw)?;
        let pre = linker.instantiate_pre(&component).map_err(|e| {
            anyhow!("component {id:?} needs a host interface spin-local does not provide: {e}")
        })?;
        if is_http {
            let proxy = ProxyPre::new(pre.clone()).map_err(|e| {
                anyhow!("component {id:?} is used by an HTTP trigger but does not export wasi:http/incoming-handler@0.2.0: {e}")
            })?;
            http_components.insert(
                id.clone(),
                HttpComponent {
                    pre: proxy,
                    shared: shared[id].clone(),
                },
            );
        }
        if is_redis {
            let handler = RedisHandlerPre::new(pre).map_err(|e| {
                anyhow!("component {id:?} is used by a Redis trigger but does not export fermyon:spin/inbound-redis: {e}")
            })?;
            redis_components.insert(
                id.clone(),
                RedisComponent {
                    pre: handler,
                    shared: shared[id].clone(),
                },
            );
        }
    }
    let redis_components = Arc::new(redis_components);

    // Subscribe (a Redis that cannot be reached is a start-up error).
    let mut tasks = tokio::task::JoinSet::new();
    for (address, channels) in subscribers {
        let sub = Subscriber { address, channels };
        let pubsub = sub.connect().await?;
        let comps = redis_components.clone();
        tasks.spawn(async move { sub.run(pubsub, comps).await });
    }
    if let Some(listener) = listener {
        let router = Router::build(
            app.http_triggers
                .iter()
                .map(|t| (t.route.as_str(), t.component.as_str())),
        )?;
        let server = Arc::new(HttpServer {
            router,
            components: http_components,
            info: http_trigger::app_info(&app.name, app.version.as_deref())?,
        });
        server.print_startup(&listener)?;
        tasks.spawn(server.serve(listener));
    }
    eprintln!("Started in {} ms", started.elapsed().as_millis());

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            eprintln!("Shutting down (SIGINT)");
            Ok(())
        }
        _ = sigterm.recv() => {
            eprintln!("Shutting down (SIGTERM)");
            Ok(())
        }
        res = tasks.join_next() => match res {
            Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(e)) => Err(anyhow!("a trigger task failed: {e}")),
            None => Ok(()),
        },
    }
}
