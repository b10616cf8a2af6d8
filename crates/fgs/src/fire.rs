//! How a timer firing becomes an invocation: an async one (SPEC.md 4), queued like any other and
//! listed with them.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use fgs_core::Qualifier;
use fgs_invoke::{AsyncDispatcher, FunctionKey, Invoker, NewEvent, StoreSource};
use fgs_triggers::timer::Fire;
use fgs_triggers::Target;

/// Weak, so the scheduler does not keep a stopping fgs alive.
pub struct AsyncFire(pub Weak<AsyncDispatcher<Invoker<StoreSource>>>);

impl AsyncFire {
    pub fn new(dispatcher: &Arc<AsyncDispatcher<Invoker<StoreSource>>>) -> Arc<AsyncFire> {
        Arc::new(AsyncFire(Arc::downgrade(dispatcher)))
    }
}

impl Fire for AsyncFire {
    async fn fire(&self, t: &Target, trigger_id: &str, event: Vec<u8>) -> Result<(), String> {
        let dispatcher = self.0.upgrade().ok_or("fgs is stopping")?;
        let qualifier = Qualifier::parse(&t.qualifier).map_err(|e| e.to_string())?;
        dispatcher
            .submit(
                NewEvent {
                    key: FunctionKey {
                        project: t.project.clone(),
                        package: t.package.clone(),
                        name: t.function.clone(),
                    },
                    qualifier,
                    body: Bytes::from(event),
                    source: format!("timer:{trigger_id}"),
                },
                None,
            )
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
