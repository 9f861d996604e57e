//! The workloads, one module each. A mode takes its parsed options, runs its open-loop
//! schedule against the server and returns its report; connecting and seeding are in
//! `client` and `seed`, the report's shape in `report`.

pub mod churn;
pub mod history;
pub mod idle;
pub mod probe;
pub mod relay;
pub mod timers;
pub mod verify;

use crate::args::Mode;
use crate::common::Common;
use crate::report::Report;

pub async fn run(mode: &Mode) -> Result<Report, String> {
    let c = Common::new(mode.common())?;
    match mode {
        Mode::Idle(a) => idle::run(&c, a).await,
        Mode::Relay(a) => relay::run(&c, a.relay.plan(&a.common)?).await,
        Mode::History(a) => history::run(&c, a).await,
        Mode::Timers(a) => timers::run(&c, a).await,
        Mode::Churn(a) => churn::run(&c, a).await,
        Mode::Verify(a) => verify::run(&c, a).await,
        Mode::Probe(a) => probe::run(&c, a).await,
    }
}
