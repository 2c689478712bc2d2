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
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
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

/// Packets due this close to now are written now: one wake-up for a
/// burst, not one timer per packet (a timer wake-up is dear in a VM).
const SLACK: Duration = Duration::from_micros(50);

/// One direction: packets read from `from`, due to be written to `to`.
struct Direction {
    from: File,
    to: File,
    label: String,
    /// Read and not yet due, oldest first (the delay is the same for all,
    /// so this is also due-time order).
    pending: VecDeque<(Instant, Vec<u8>)>,
}

impl Direction {
    /// Read every packet waiting on `from` (the device is non-blocking),
    /// each due `delay` from now.
    fn read_all(&mut self, delay: Duration, buf: &mut [u8]) {
        loop {
            match self.from.read(buf) {
                Ok(n) => self
                    .pending
                    .push_back((Instant::now() + delay, buf[..n].to_vec())),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => die(&self.label, e),
            }
        }
    }

    /// Write what is due by `by`; when the next packet is due after that.
    fn write_due(&mut self, by: Instant) -> Option<Instant> {
        while let Some((due, _)) = self.pending.front() {
            if *due > by {
                return Some(*due);
            }
            let (_, packet) = self.pending.pop_front().expect("a front");
            // A packet the kernel refuses (e.g. no route yet) is dropped, as
            // a wire would drop it; the device going away ends the process.
            if let Err(e) = self.to.write(&packet) {
                if e.raw_os_error() == Some(libc::EBADFD) {
                    die(&self.label, e);
                }
            }
        }
        None
    }
}

/// One thread for both directions: write what is due, then sleep in
/// ppoll until a device has packets or the next one is due. A reader
/// and a writer thread per direction cost a wake-up (or two) per
/// packet, more than a core at 1 Gbit/s in a 2-vCPU VM.
fn run(mut ways: [Direction; 2], delay: Duration) -> ! {
    let mut buf = vec![0u8; 70_000];
    loop {
        let by = Instant::now() + SLACK;
        let next = ways.iter_mut().filter_map(|w| w.write_due(by)).min();
        let mut fds = ways.each_ref().map(|w| libc::pollfd {
            fd: w.from.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        let wait = next.map(|t| {
            let d = t.saturating_duration_since(Instant::now());
            libc::timespec {
                tv_sec: d.as_secs() as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            }
        });
        let timeout = wait
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: two valid pollfds, a timespec that outlives the call (or
        // none: wait for a packet), no signal mask.
        let r = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, timeout, std::ptr::null()) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != ErrorKind::Interrupted {
                die("ppoll", e);
            }
            continue;
        }
        for (w, fd) in ways.iter_mut().zip(fds) {
            if fd.revents != 0 {
                w.read_all(delay, &mut buf);
            }
        }
    }
}

/// O_NONBLOCK on a device, so that [`Direction::read_all`] stops at EAGAIN.
fn nonblocking(f: &File) -> std::io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on an open descriptor.
    unsafe {
        let flags = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(f.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
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
    let open = |name: &str| {
        let f = attach(name).unwrap_or_else(|e| die(name, e));
        nonblocking(&f).unwrap_or_else(|e| die(name, e));
        f
    };
    let (a, b) = (open(&args[1]), open(&args[2]));
    let clone = |f: &File, name: &str| f.try_clone().unwrap_or_else(|e| die(name, e));
    let ways = [
        Direction {
            from: clone(&a, &args[1]),
            to: clone(&b, &args[2]),
            label: format!("{}->{}", args[1], args[2]),
            pending: VecDeque::new(),
        },
        Direction {
            from: b,
            to: a,
            label: format!("{}->{}", args[2], args[1]),
            pending: VecDeque::new(),
        },
    ];
    run(ways, delay)
}
