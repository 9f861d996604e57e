//! One integration-test binary: a module per area, all on `support`.

mod support;

mod agents;
mod browser;
mod capture;
mod cli;
mod connections;
mod crash;
mod followup;
mod fuzz_corpus;
mod hardening;
mod memory;
mod secrets;
mod throttle;
mod visitor;
