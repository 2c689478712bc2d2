//! bench/compress.sh's delay line: a fixed one-way delay between two tun
//! devices. It gives the bench its round trips on every kernel, also on
//! those without the netem qdisc (some VM kernels have only tbf and htb).
//!
//!     netdelay TUN_A TUN_B MICROSECONDS
//!
//! Every packet read from one device is written to the other MICROSECONDS
//! after it was read, in order, both ways. The bench runs it in a router
//! namespace whose policy routes send what arrives from each host into one
//! of the devices; what netdelay writes to the other comes out of the kernel
//! as if it had arrived there and is forwarded on. The devices carry the
//! virtio-net header (IFF_VNET_HDR with TSO offloads), so TCP's 64 KiB GSO
//! segments cross as one read and one write, as through a real NIC with
//! TSO: at 1 Gbit/s that is a few thousand packets a second, not 80,000.
//! The rate is shaped elsewhere (tbf on the hosts' links); this only delays.
//!
//! bench/run builds it (`cargo build --release --example netdelay`); it runs
//! until killed. The devices are persistent (`ip tuntap add`); it only
//! attaches to them.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Attach to the persistent tun device NAME with the virtio-net header and
/// TSO offloads on.
fn attach(name: &str) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    let mut ifreq = [0u8; 40];
    if name.is_empty() || name.len() > 15 {
        return Err(std::io::Error::other(format!("bad device name {name:?}")));
    }
    ifreq[..name.len()].copy_from_slice(name.as_bytes());
    let flags = (libc::IFF_TUN | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short;
    ifreq[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: TUNSETIFF reads and writes a struct ifreq, 40 bytes on Linux.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, ifreq.as_mut_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let offload = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN;
    // SAFETY: TUNSETOFFLOAD takes its flags by value.
    if unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            libc::TUNSETOFFLOAD,
            offload as libc::c_ulong,
        )
    } < 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

/// Packets read and not yet due, oldest first.
type Queue = Arc<(Mutex<VecDeque<(Instant, Vec<u8>)>>, Condvar)>;

/// One direction: a reader thread stamps each packet with its due time, a
/// writer thread writes it once due. Both run until an error (the device
/// gone), which ends the process.
fn direction(mut from: File, mut to: File, delay: Duration, label: String) {
    let queue: Queue = Arc::new((Mutex::new(VecDeque::new()), Condvar::new()));
    let reader_queue = Arc::clone(&queue);
    let reader_label = label.clone();
    thread::spawn(move || {
        let mut buf = vec![0u8; 70_000];
        loop {
            let n = match from.read(&mut buf) {
                Ok(n) => n,
                Err(e) => die(&reader_label, e),
            };
            let due = Instant::now() + delay;
            let (lock, ready) = &*reader_queue;
            lock.lock().unwrap().push_back((due, buf[..n].to_vec()));
            ready.notify_one();
        }
    });
    thread::spawn(move || {
        loop {
            let (due, packet) = {
                let (lock, ready) = &*queue;
                let mut pending = lock.lock().unwrap();
                while pending.is_empty() {
                    pending = ready.wait(pending).unwrap();
                }
                pending.pop_front().unwrap()
            };
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            // A packet the kernel refuses (e.g. no route yet) is dropped, as a
            // wire would drop it; the device going away ends the process.
            if let Err(e) = to.write(&packet) {
                if e.raw_os_error() == Some(libc::EBADFD) {
                    die(&label, e);
                }
            }
        }
    });
}

fn die(label: &str, e: std::io::Error) -> ! {
    eprintln!("netdelay: {label}: {e}");
    std::process::exit(1);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: netdelay TUN_A TUN_B MICROSECONDS");
        std::process::exit(2);
    }
    let micros: u64 = args[3].parse().unwrap_or_else(|_| {
        eprintln!(
            "netdelay: MICROSECONDS must be a whole number, not {:?}",
            args[3]
        );
        std::process::exit(2);
    });
    let delay = Duration::from_micros(micros);
    let open = |name: &str| attach(name).unwrap_or_else(|e| die(name, e));
    let (a, b) = (open(&args[1]), open(&args[2]));
    let clone = |f: &File, name: &str| f.try_clone().unwrap_or_else(|e| die(name, e));
    direction(
        clone(&a, &args[1]),
        clone(&b, &args[2]),
        delay,
        format!("{}->{}", args[1], args[2]),
    );
    direction(b, a, delay, format!("{}->{}", args[2], args[1]));
    loop {
        thread::park();
    }
}
