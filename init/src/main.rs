//! baton's PID 1. Everything lives in the library; this only hands over control.

fn main() {
    // The same binary, re-executed by the container runtime, serves as its helper process.
    if let Some(code) = baton_init::containers::runtime::helper_main_if_requested() {
        std::process::exit(code);
    }
    // And as the front door, which the init runs sandboxed to answer the board's routes.
    if let Some(code) = baton_frontdoor::child::main_if_requested() {
        std::process::exit(code);
    }
    baton_init::run()
}
