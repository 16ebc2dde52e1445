//! What the supervisor drives: the container runtime, the board bridge, the image store.

use std::collections::BTreeSet;
use std::sync::Arc;

use baton_oci::Store;

use super::{images, Paths};
use crate::containers::runtime::{self, Runtime};
use crate::svcnet::bridge::{self, Bridge};

/// What instances need from the board; any of it may be missing, with the reason.
pub(super) struct Toolkit {
    pub(super) runtime: Result<Runtime, String>,
    pub(super) bridge: Result<Bridge, String>,
    pub(super) pool: Option<bridge::pool::Pool>,
    pub(super) store: Result<Arc<Store>, String>,
}

impl Toolkit {
    pub(super) async fn start(paths: &Paths) -> (Toolkit, Vec<String>) {
        let mut notes = Vec::new();
        let runtime = Runtime::start(runtime::RuntimePaths::default())
            .await
            .map_err(|e| format!("the container runtime did not start: {e}"));
        if let Ok(r) = &runtime {
            notes.extend(r.startup_notes().iter().cloned());
        }
        let config = bridge::Config {
            subnet: paths.subnet,
            ..bridge::Config::default()
        };
        let bridge = match Bridge::ensure(config.clone()).await {
            Ok(b) => {
                match b.remove_leftovers(&[]).await {
                    Ok(removed) if !removed.is_empty() => {
                        notes.push(format!("removed leftover links {}", removed.join(", ")))
                    }
                    Ok(_) => {}
                    Err(e) => notes.push(format!("removing leftover links: {e}")),
                }
                if let Err(e) = crate::svcnet::nft::apply(&crate::svcnet::nft::model::Ruleset {
                    tables: vec![bridge::nat_table(b.subnet(), &config.name)],
                }) {
                    notes.push(format!(
                        "container traffic cannot reach the uplink (NAT rules refused): {e}"
                    ));
                }
                Ok(b)
            }
            Err(e) => Err(format!("the container bridge is not available: {e}")),
        };
        let pool = match &bridge {
            Ok(b) => bridge::pool::Pool::new(b.subnet()).ok(),
            Err(_) => None,
        };
        let images = paths.images();
        // Opening recovers from a power cut; a collection keeping every ref then drops blobs and
        // layers that an interrupted import or pull left without a ref.
        let store = tokio::task::spawn_blocking(move || {
            let store = Store::open(&images)?;
            if let Ok(report) = images::collect(&store, &BTreeSet::new(), &BTreeSet::new()) {
                if let Some(line) = images::summary(&report) {
                    println!("baton: {line}");
                }
            }
            Ok::<_, baton_oci::StoreError>(store)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map(Arc::new)
        .map_err(|e| format!("the image store is not available: {e}"));
        if let Ok(s) = &store {
            let r = s.recovery();
            if !r.removed_temp.is_empty() || !r.dropped_refs.is_empty() {
                notes.push(format!(
                    "image store recovered: {} temporary files removed, {} broken refs dropped",
                    r.removed_temp.len(),
                    r.dropped_refs.len()
                ));
            }
        }
        (
            Toolkit {
                runtime,
                bridge,
                pool,
                store,
            },
            notes,
        )
    }
}
