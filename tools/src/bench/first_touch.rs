//! What growing costs on this machine: the time to touch memory the process has never used
//! (the kernel zeroes every new page; on a virtual machine the host may back it only then),
//! against writing the same memory again. A router holding a million unanswered commands
//! grows by hundreds of MiB; a pipe holds nothing, so its saturation runs never pay this.

use std::time::Instant;

/// Touches `mib` MiB of fresh memory page by page, then writes it all again; prints both.
pub fn run(mib: usize) -> anyhow::Result<()> {
    const PAGE: usize = 4096;
    let bytes = mib
        .checked_mul(1 << 20)
        .ok_or_else(|| anyhow::anyhow!("--first-touch-mib {mib}: too large"))?;
    // Zeroed by the allocator from fresh pages (calloc-like): nothing is touched yet.
    let mut v: Vec<u8> = vec![0; bytes];
    let t0 = Instant::now();
    for i in (0..bytes).step_by(PAGE) {
        v[i] = 1;
    }
    let first = t0.elapsed();
    let t1 = Instant::now();
    v.fill(2);
    let again = t1.elapsed();
    std::hint::black_box(&v);
    let per_gib = |d: std::time::Duration| d.as_secs_f64() * 1024.0 / mib.max(1) as f64;
    println!(
        "first touch of {mib} MiB: {:.3} s ({:.2} s per GiB); writing it again: {:.3} s ({:.2} s per GiB)",
        first.as_secs_f64(),
        per_gib(first),
        again.as_secs_f64(),
        per_gib(again)
    );
    Ok(())
}
