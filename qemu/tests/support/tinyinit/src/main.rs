//! PID 1 for baton-qemu's boot tests. Prints `tinyinit: up`, loads the kernel modules listed
//! in `/modules/order` (virtio-net and its dependencies), sets eth0 and eth1 up so the kernel
//! sends its IPv6 link-local chatter (router solicitations, MLD reports) onto both links,
//! prints `tinyinit: links up`, and powers off after 60 seconds. With `TINYINIT_MODE=poweroff`
//! on the kernel command line it powers off right after the first line.

use std::ffi::{c_char, c_int, c_long, c_ulong, c_void};
use std::io::Write;
use std::time::{Duration, Instant};

extern "C" {
    fn syscall(number: c_long, ...) -> c_long;
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
    fn reboot(cmd: c_int) -> c_int;
    fn sync();
}

const SYS_FINIT_MODULE: c_long = 273; // aarch64
const SIOCGIFFLAGS: c_ulong = 0x8913;
const SIOCSIFFLAGS: c_ulong = 0x8914;
const IFF_UP: i16 = 1;
const RB_POWER_OFF: c_int = 0x4321_fedc_u32 as c_int;

#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: i16,
    pad: [u8; 22],
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "tinyinit: {line}");
    let _ = out.flush();
}

fn load_module(path: &str) -> Result<(), std::io::Error> {
    let file = std::fs::File::open(path)?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let empty = b"\0";
    // SAFETY: finit_module reads the open module file and a NUL-terminated, empty parameter
    // string; both outlive the call.
    let rc = unsafe { syscall(SYS_FINIT_MODULE, fd, empty.as_ptr() as *const c_char, 0) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn link_up(sock: c_int, name: &str) -> bool {
    let mut req = IfReq {
        name: [0; 16],
        flags: 0,
        pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: req is a valid, writable struct ifreq (name, then flags) for the whole call.
    if unsafe { ioctl(sock, SIOCGIFFLAGS, &mut req as *mut IfReq as *mut c_void) } != 0 {
        return false;
    }
    req.flags |= IFF_UP;
    // SAFETY: as above.
    unsafe { ioctl(sock, SIOCSIFFLAGS, &mut req as *mut IfReq as *mut c_void) == 0 }
}

fn power_off() -> ! {
    // SAFETY: sync and reboot take no pointers; reboot(RB_POWER_OFF) ends the machine.
    unsafe {
        sync();
        reboot(RB_POWER_OFF);
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn main() {
    say("up");
    if std::env::var("TINYINIT_MODE").as_deref() == Ok("poweroff") {
        say("powering off");
        power_off();
    }
    let order = std::fs::read_to_string("/modules/order").unwrap_or_default();
    for name in order.lines().filter(|l| !l.is_empty()) {
        if let Err(e) = load_module(&format!("/modules/{name}")) {
            say(&format!("cannot load {name}: {e}"));
        }
    }
    // SAFETY: plain socket(2) call; the descriptor is only used for interface ioctls.
    let sock = unsafe { socket(2, 2, 0) }; // AF_INET, SOCK_DGRAM
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pending = vec!["eth0", "eth1"];
    while !pending.is_empty() && Instant::now() < deadline {
        pending.retain(|name| !link_up(sock, name));
        std::thread::sleep(Duration::from_millis(50));
    }
    say(&format!("links up (missing: {pending:?})"));
    std::thread::sleep(Duration::from_secs(60));
    power_off();
}
