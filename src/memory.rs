//! Keeping the resident set small (an idle `serve` is a target in BENCHMARKS.md).
//!
//! The kernel maps a program's code in 64 KiB runs around each page it touches
//! ("fault-around"), so a large binary whose code is touched here and there ends up with
//! most of its text resident. drbot asks for its own code to be mapped page by page instead
//! (`MADV_RANDOM` on its executable mappings), and caps glibc's malloc arenas, which would
//! otherwise grow one per thread.

/// Call first thing in `main`.
pub fn trim() {
    #[cfg(target_os = "linux")]
    linux::trim();
}

/// Once serving: hands back the code pages only start-up used (configuration, the AWS SDK's
/// set-up, migrations). Code still in use comes back on demand, from the page cache.
pub fn release_startup_code() {
    // SAFETY: mi_collect only returns the allocator's free memory to the OS.
    unsafe { libmimalloc_sys::mi_collect(true) };
    #[cfg(target_os = "linux")]
    linux::each_code_mapping(|start, len| {
        // SAFETY: only the executable's read-only, executable mappings (its machine code,
        // never written): dropping their pages only means they are read again when run.
        unsafe {
            libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED);
        }
    });
}

#[cfg(target_os = "linux")]
mod linux {
    pub fn trim() {
        // SAFETY: mallopt only tunes the allocator; M_ARENA_MAX = -8.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
        each_code_mapping(|start, len| {
            // SAFETY: an advice on our own executable's code mapping, whole pages as
            // /proc/self/maps lists them; it changes paging, never contents.
            unsafe {
                libc::madvise(start as *mut libc::c_void, len, libc::MADV_RANDOM);
            }
        });
    }

    /// Calls `f(start, len)` for each read-only mapping of the running executable none of
    /// whose pages was ever written (its code and constants, never the relocated RELRO
    /// data, whose pages are private copies: `Anonymous` > 0 in smaps).
    pub fn each_code_mapping(mut f: impl FnMut(usize, usize)) {
        let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
            return;
        };
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return;
        };
        let exe = exe.to_string_lossy();
        let mut current: Option<(usize, usize)> = None;
        for line in smaps.lines() {
            let mut fields = line.split_whitespace();
            let first = fields.next().unwrap_or("");
            if let Some((start, end)) = first
                .split_once('-')
                .filter(|_| line.ends_with(exe.as_ref()))
            {
                let perms = fields.next().unwrap_or("");
                current = match (
                    usize::from_str_radix(start, 16),
                    usize::from_str_radix(end, 16),
                ) {
                    (Ok(start), Ok(end)) if perms.starts_with('r') && !perms.contains('w') => {
                        Some((start, end))
                    }
                    _ => None,
                };
                continue;
            }
            if first.contains('-') && !first.ends_with(':') {
                current = None; // another mapping
                continue;
            }
            if first == "Anonymous:" {
                if let Some((start, end)) = current.take() {
                    if fields.next() == Some("0") {
                        f(start, end - start);
                    }
                }
            }
        }
    }
}
