//! baton's PID 1. Everything lives in the library; this only hands over control.

fn main() {
    baton_init::run()
}
