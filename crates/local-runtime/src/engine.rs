//! The wasmtime engine, loading components (turning `wasm32-wasip1` modules
//! into components the way Spin 3.6's `crates/componentize` does) and the
//! linker with the host interfaces.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use wasmparser::{Encoding, Parser, Payload};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::host::{bindings::SpinImports, State};

/// Engine options from the command line.
pub struct EngineOptions<'a> {
    /// Directory for wasmtime's compiled-code cache, or `None` to disable it.
    pub cache_dir: Option<&'a Path>,
    pub pooling: bool,
}

/// Builds the engine: component model, async, the pooling allocator (as Spin
/// uses it) unless disabled, and the on-disk compilation cache.
pub fn engine(opts: &EngineOptions) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    if let Some(dir) = opts.cache_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create cache directory {}", dir.display()))?;
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(dir);
        config.cache(Some(
            wasmtime::Cache::new(cache).map_err(|e| anyhow!("{e}"))?,
        ));
    }
    if opts.pooling {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(1_000)
            .total_core_instances(2_000)
            .total_memories(2_000)
            .total_tables(2_000)
            .max_memory_size(1 << 30);
        let mut with_pooling = config.clone();
        with_pooling.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        match Engine::new(&with_pooling) {
            Ok(engine) => return Ok(engine),
            Err(e) => eprintln!(
                "Warning: the pooling allocator is not available here ({e}); using on-demand allocation"
            ),
        }
    }
    Engine::new(&config).map_err(|e| anyhow!("{e}"))
}

/// Turns a core module into a component as Spin does; components pass through.
pub fn componentize_if_necessary(bytes: &[u8]) -> Result<Vec<u8>> {
    for payload in Parser::new(0).parse_all(bytes) {
        if let Payload::Version { encoding, .. } = payload.context("unable to parse binary")? {
            return match encoding {
                Encoding::Component => Ok(bytes.to_vec()),
                Encoding::Module => componentize(bytes),
            };
        }
    }
    bail!("unable to determine wasm binary encoding")
}

/// Spin's `componentize`: modules produced by wit-bindgen >= 0.5 (spin-sdk
/// 2.x and later, including 5.2) get the WASI preview1 *reactor* adapter; a
/// module with a `_start` export and no wit-bindgen is a command and gets the
/// command adapter. Older wit-bindgen 0.2 modules (spin-sdk 1.x) need Spin's
/// own adapter and are rejected here.
fn componentize(module: &[u8]) -> Result<Vec<u8>> {
    // The wit-bindgen version is recorded in the producers of the
    // `component-type` sections, as Spin's `ModuleInfo` reads it.
    let (_, bindgen) = wit_component::metadata::decode(module)?;
    let has_bindgen_section = bindgen.producers.is_some();
    let bindgen_version = bindgen
        .producers
        .as_ref()
        .and_then(|p| p.get("processed-by"))
        .and_then(|f| {
            f.iter()
                .find(|(k, _)| k.starts_with("wit-bindgen"))
                .map(|(_, v)| v.clone())
        });
    let mut has_start = false;
    for payload in Parser::new(0).parse_all(module) {
        if let Payload::ExportSection(reader) = payload? {
            for export in reader {
                if export?.name == "_start" {
                    has_start = true;
                }
            }
        }
    }
    let new_bindgen = bindgen_version.as_deref().is_some_and(|v| {
        let mut parts = v.split('.');
        let major = parts.next().and_then(|p| p.parse::<u32>().ok());
        let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
        matches!((major, minor), (Some(0), Some(m)) if m >= 5)
    });
    let adapter = if new_bindgen {
        wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER
    } else if bindgen_version.is_none() && has_start && !has_bindgen_section {
        wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER
    } else {
        bail!(
            "cannot adapt this module (wit-bindgen {}); rebuild it with spin-sdk 5.2 or as a wasm32-wasip2 component",
            bindgen_version.as_deref().unwrap_or("unknown")
        )
    };
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)?
        .adapter("wasi_snapshot_preview1", adapter)?
        .encode()
}

/// Reads, componentizes and compiles one component.
pub fn load_component(
    engine: &Engine,
    id: &str,
    path: &Path,
    source_raw: &str,
) -> Result<Component> {
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow!(
                "component {id:?}: source \"{source_raw}\" ({}) does not exist. Build the components first: `spin build`, or `scripts/build.sh` (cargo build --target wasm32-wasip1 --release)",
                path.display()
            )
        } else {
            anyhow!("component {id:?}: cannot read {}: {e}", path.display())
        }
    })?;
    let component = componentize_if_necessary(&bytes).with_context(|| {
        format!(
            "component {id:?}: cannot turn {} into a component",
            path.display()
        )
    })?;
    Component::new(engine, &component)
        .map_err(|e| anyhow!("{e:?}"))
        .with_context(|| format!("component {id:?}: cannot compile {}", path.display()))
}

/// The linker with everything Spin 3.6 gives these components.
pub fn linker(engine: &Engine) -> Result<Linker<State>> {
    let mut linker = Linker::<State>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow!("{e:?}"))?;
    wasmtime_wasi_http::add_only_http_to_linker_async(&mut linker).map_err(|e| anyhow!("{e:?}"))?;
    SpinImports::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
        .map_err(|e| anyhow!("{e:?}"))?;
    Ok(linker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_pass_through_and_garbage_fails() {
        // An empty component: magic, version 0x0d, layer 1.
        let component = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
        assert_eq!(componentize_if_necessary(&component).unwrap(), component);
        assert!(componentize_if_necessary(b"not wasm").is_err());
        // A core module without wit-bindgen and without _start cannot be adapted.
        let module = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
        assert!(componentize_if_necessary(&module).is_err());
    }
}
