//! The signals that stop the server: SIGTERM or Ctrl-C (SIGINT).

use std::future::Future;

/// Listens for SIGTERM and SIGINT from the moment it is called, so a signal that comes
/// before the server first polls the returned future still stops it cleanly (instead
/// of killing the process the default way); resolves on the first of them.
///
/// Call it inside the runtime, before announcing that the server is listening.
pub fn signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut t), Ok(mut i)) => {
                    tokio::select! {
                        _ = t.recv() => {}
                        _ = i.recv() => {}
                    }
                }
                (Ok(mut t), Err(_)) => drop(t.recv().await),
                (Err(_), Ok(mut i)) => drop(i.recv().await),
                (Err(_), Err(_)) => std::future::pending().await,
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
