//! Re-reading the configuration files and serving them: what `SIGHUP`, `mailmux reload` and
//! `mailmux admin reload` (`POST /reload`) do. A configuration with errors changes nothing.

use crate::server::{ReloadSummary, ServerHandle};

impl std::fmt::Display for ReloadSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kept {:?}, added {:?}, removed {:?}", self.kept, self.added, self.removed)
    }
}

/// Loads the files the server was started from (its configuration directory and instance)
/// and serves them, or says why not; counted in `mailmux_reloads_total`.
pub async fn from_files(server: &ServerHandle) -> Result<ReloadSummary, String> {
    let turn = server.reload_turn().await;
    let (dir, instance) = server.origin();
    let loaded = tokio::task::spawn_blocking(move || mailmux_config::load(&dir, instance.as_deref())).await;
    let result = match loaded {
        Ok(Ok(loaded)) => {
            for warning in &loaded.warnings.0 {
                tracing::warn!("{warning}");
            }
            server.apply(loaded.config).await.map_err(|e| e.to_string())
        }
        Ok(Err(diags)) => Err(diags.to_string().trim_end().to_owned()),
        Err(e) => Err(e.to_string()),
    };
    drop(turn);
    server.metrics().reload(result.is_ok());
    if let Err(e) = &result {
        for line in e.lines() {
            tracing::error!("reload refused, nothing changed: {line}");
        }
    }
    result
}
