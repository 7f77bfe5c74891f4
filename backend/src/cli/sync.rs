//! `entrada sync`: a gate device's sync with the server, and how the gate trusts it.

use anyhow::Context;

use super::{open, progress_bar, SyncArgs, TrustArgs};

impl TrustArgs {
    pub(crate) fn transport(&self) -> anyhow::Result<entrada::sync::client::Transport> {
        let ca_cert_pem = match &self.ca_cert {
            Some(path) => {
                Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
            }
            None => None,
        };
        Ok(entrada::sync::client::Transport {
            ca_cert_pem,
            allow_http: self.allow_http,
        })
    }
}

/// `entrada sync`.
pub(crate) fn sync(args: SyncArgs) -> anyhow::Result<()> {
    let SyncArgs {
        db,
        server,
        token,
        once,
        watch,
        interval,
        page_size,
        lan_listen,
        peers,
        no_mdns,
        trust,
        app_dir,
        update_every,
        update_quiet,
    } = args;
    let store = std::sync::Arc::new(open(&db)?);
    let mut engine =
        entrada::sync::client::SyncEngine::with_transport(store.clone(), trust.transport()?)?;
    if let Some(page_size) = page_size {
        engine = engine.with_page_size(page_size);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        // --server/--token pair an unpaired database, and re-pair a
        // paired one (new URL, or a new token after a revocation):
        // the sync engine's one pairing policy, as in the app.
        let pairing = store.pairing()?;
        let server = server.or_else(|| pairing.as_ref().map(|p| p.server_url.clone()));
        let token = token.or_else(|| pairing.as_ref().map(|p| p.token.clone()));
        let (Some(server), Some(token)) = (server, token) else {
            anyhow::bail!(
                "{}: give both --server and --token to pair it",
                db.db.display()
            );
        };
        match engine.repair(&server, &token).await? {
            entrada::sync::client::PairChange::Unchanged => {}
            entrada::sync::client::PairChange::Paired { info, replaced } => {
                tracing::info!(
                    device = info.device_id,
                    orq = info.orq,
                    venue = info.venue_id,
                    replaced,
                    "paired"
                )
            }
            entrada::sync::client::PairChange::Kept { reason } => tracing::warn!(
                code = reason.code(),
                error = %reason,
                "new --server/--token not applied: syncing with the current pairing"
            ),
        }
        if watch && !once {
            // Started by `entrada launch`: this version is healthy once its
            // first sync round succeeds (reported in the round callback).
            let mut healthy = false;
            let interval = std::time::Duration::from_secs_f64(interval.max(0.05));
            // The LAN exchange (issue 14) runs beside the rounds: it keeps
            // going while the server is unreachable.
            let lan = if lan_listen.is_some() || !peers.is_empty() {
                use entrada::sync::lan::{LanConfig, LanError, LanExchange};
                let exchange = std::sync::Arc::new(LanExchange::new(store.clone())?);
                // mDNS discovery beside it unless --no-mdns /
                // ENTRADA_LAN_MDNS=0 (or a loopback address).
                let discover = entrada::sync::lan_discovery::wanted(
                    no_mdns,
                    std::env::var("ENTRADA_LAN_MDNS").ok().as_deref(),
                    lan_listen,
                );
                let config = LanConfig {
                    listen: lan_listen,
                    peers,
                };
                let store = store.clone();
                Some(tokio::spawn(async move {
                    let mut exchange = exchange;
                    loop {
                        let run = entrada::sync::lan_discovery::run_exchange(
                            exchange,
                            store.clone(),
                            config.clone(),
                            discover,
                        );
                        match run.await {
                            // Paired again (`entrada device pair` beside
                            // this process): the same exchange with the new key.
                            Err(LanError::KeyChanged) => loop {
                                match LanExchange::new(store.clone()) {
                                    Ok(fresh) => {
                                        exchange = std::sync::Arc::new(fresh);
                                        break;
                                    }
                                    // (A busy replica, a pairing half done.)
                                    Err(e) => {
                                        tracing::warn!(error = %e, "LAN exchange not restarted yet; again in 1 s");
                                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                                    }
                                }
                            },
                            done => return done,
                        }
                    }
                }))
            } else {
                None
            };
            let lan_failed = async {
                match lan {
                    Some(task) => match task.await {
                        Ok(Err(e)) => anyhow::anyhow!(e),
                        Ok(Ok(())) => anyhow::anyhow!("the LAN exchange stopped"),
                        Err(e) => anyhow::anyhow!(e),
                    },
                    None => std::future::pending().await,
                }
            };
            let updates = async {
                match &app_dir {
                    Some(dir) => {
                        entrada::sync::update::warn_if_dev_key();
                        let policy = entrada::sync::update::UpdatePolicy {
                            app: entrada::sync::update::AppDir::new(dir, "entrada"),
                            every: std::time::Duration::from_secs_f64(update_every.max(0.1)),
                            quiet: chrono::Duration::seconds(update_quiet.max(0)),
                        };
                        // A headless gate has no screen to lock.
                        engine.watch_updates(&policy, || false).await
                    }
                    None => std::future::pending().await,
                }
            };
            let rounds = engine.watch(interval, |r| match r {
                Ok(report) => {
                    if !healthy {
                        healthy = true;
                        entrada::sync::update::confirm_healthy_to_launcher();
                    }
                    if report.uploaded + report.pulled > 0 {
                        tracing::info!(?report, "sync round")
                    }
                }
                Err(e) => {
                    let status = engine.loop_status();
                    tracing::warn!(
                        code = e.code(),
                        error = %e,
                        failures = status.failures,
                        next_attempt_at = ?status.next_attempt_at,
                        "sync round failed"
                    )
                }
            });
            tokio::select! {
                fatal = rounds => anyhow::bail!(fatal),
                e = lan_failed => return Err(e.context("LAN exchange")),
                _ = updates => {
                    // Switched to a new version: the launcher starts it.
                    std::process::exit(entrada::sync::update::RESTART_EXIT_CODE);
                }
            }
        }
        let bar = progress_bar(0, "pulling changes");
        let report = engine
            .round(|done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
            .await;
        bar.finish_and_clear();
        let status = engine.status().await?;
        println!(
            "{}",
            serde_json::json!({ "round": report.as_ref().ok(), "status": status })
        );
        report?;
        anyhow::Ok(())
    })?;
    Ok(())
}
