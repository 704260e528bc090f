//! Component stdout/stderr, handled like `spin up`: appended to
//! `<log-dir>/<component>_stdout.txt` / `_stderr.txt` and, unless quiet or
//! not followed, copied unprefixed to the runtime's stderr.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use anyhow::{Context as _, Result};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// One of a component's two output streams.
#[derive(Clone)]
pub struct ComponentStdio {
    file: Option<Arc<Mutex<File>>>,
    follow: bool,
}

impl ComponentStdio {
    /// Opens (appending) `<dir>/<component>_<suffix>.txt` when `dir` is set.
    pub fn open(dir: Option<&Path>, component: &str, suffix: &str, follow: bool) -> Result<Self> {
        let file = match dir {
            Some(dir) => {
                let sanitized: String = component
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let path = dir.join(format!("{sanitized}_{suffix}.txt"));
                let f = File::options()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .with_context(|| format!("Failed to open log file \"{}\"", path.display()))?;
                Some(Arc::new(Mutex::new(f)))
            }
            None => None,
        };
        Ok(Self { file, follow })
    }

    fn write_all(&self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(f) = &self.file {
            f.lock()
                .map_err(|_| std::io::Error::other("log file lock poisoned"))?
                .write_all(buf)?;
        }
        if self.follow {
            let mut err = std::io::stderr().lock();
            err.write_all(buf)?;
            err.flush()?;
        }
        Ok(())
    }
}

impl IsTerminal for ComponentStdio {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for ComponentStdio {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for ComponentStdio {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        // Small appends to a local file and the terminal: written directly.
        Poll::Ready(self.write_all(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
