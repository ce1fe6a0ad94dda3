//! Parallel raw deflate, pigz style: the input is cut into blocks that are
//! compressed independently on several threads, each primed with the last
//! 32 KiB of the block before it as a dictionary and ended with a sync flush
//! (so it ends on a byte boundary and is not final), then an empty final
//! block closes the stream. The result is one ordinary deflate stream that
//! any inflater reads; compression is within a fraction of a percent of a
//! single-threaded stream.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use flate2::{Compress, Compression, FlushCompress, Status};

/// Deflate's window: the most a back-reference can reach.
const WINDOW: usize = 32 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct DeflateOptions {
    /// zlib level 0-9; Framerr uses 6.
    pub level: u32,
    /// Worker threads; 1 compresses on the calling thread.
    pub threads: usize,
    /// Input bytes per block.
    pub block: usize,
}

impl Default for DeflateOptions {
    fn default() -> Self {
        DeflateOptions {
            level: 6,
            // The cores this process may use: its CPU affinity, and in a
            // container its cgroup's CPU quota (v1 or v2), not the host's
            // count; memory grows with it by about 2 MiB a thread.
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            block: 1024 * 1024,
        }
    }
}

/// A block to compress, with the dictionary from the block before it.
struct Job {
    dict: Vec<u8>,
    data: Vec<u8>,
    finish: bool,
    reply: SyncSender<io::Result<Vec<u8>>>,
}

/// What a finished stream consumed and produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deflated {
    pub uncompressed: u64,
    pub compressed: u64,
}

/// Reads `input` to its end, deflates it and hands the compressed bytes to
/// `sink` in order. `inspect` sees every uncompressed chunk, in order, on
/// the calling thread (for checksums and progress). Memory is bounded by
/// about `2 * threads + 2` blocks.
pub fn deflate(
    mut input: impl Read,
    options: DeflateOptions,
    mut inspect: impl FnMut(&[u8]) -> io::Result<()>,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<Deflated> {
    let threads = options.threads.max(1);
    let block = options.block.max(WINDOW);
    let level = options.level.min(9);
    let (job_tx, job_rx) = sync_channel::<Job>(threads);
    let job_rx = Arc::new(Mutex::new(job_rx));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let rx = Arc::clone(&job_rx);
            scope.spawn(move || worker(&rx, level));
        }
        let mut pending: VecDeque<Receiver<io::Result<Vec<u8>>>> = VecDeque::new();
        let mut totals = Deflated { uncompressed: 0, compressed: 0 };
        let mut emit = |rx: Receiver<io::Result<Vec<u8>>>, totals: &mut Deflated| -> io::Result<()> {
            let out = rx.recv().map_err(|_| io::Error::other("deflate worker stopped"))??;
            totals.compressed += out.len() as u64;
            sink(&out)
        };
        let mut dict = Vec::new();
        let result = (|| {
            loop {
                let data = read_block(&mut input, block)?;
                let finish = data.is_empty();
                inspect(&data)?;
                totals.uncompressed += data.len() as u64;
                let next_dict = data[data.len().saturating_sub(WINDOW)..].to_vec();
                let (reply, rx) = sync_channel(1);
                let job = Job { dict: std::mem::take(&mut dict), data, finish, reply };
                job_tx.send(job).map_err(|_| io::Error::other("deflate worker stopped"))?;
                pending.push_back(rx);
                dict = next_dict;
                while pending.len() > threads || (finish && !pending.is_empty()) {
                    if let Some(rx) = pending.pop_front() {
                        emit(rx, &mut totals)?;
                    }
                }
                if finish {
                    return Ok(totals);
                }
            }
        })();
        drop(job_tx);
        result
    })
}

fn worker(jobs: &Mutex<Receiver<Job>>, level: u32) {
    let mut compress = Compress::new(Compression::new(level), false);
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        compress.reset();
        let out = compress_block(&mut compress, &job.dict, &job.data, job.finish);
        // The receiver is gone only when the writer already failed.
        let _ = job.reply.send(out);
    }
}

fn compress_block(c: &mut Compress, dict: &[u8], data: &[u8], finish: bool) -> io::Result<Vec<u8>> {
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    let flush = if finish { FlushCompress::Finish } else { FlushCompress::Sync };
    let start_in = c.total_in();
    loop {
        let consumed = (c.total_in() - start_in) as usize;
        if out.capacity() - out.len() < 1024 {
            out.reserve(64 * 1024);
        }
        let status = c.compress_vec(&data[consumed..], &mut out, flush).map_err(io::Error::other)?;
        let done_in = (c.total_in() - start_in) as usize == data.len();
        match status {
            Status::StreamEnd => return Ok(out),
            // A sync flush is complete once all input is in and the output
            // buffer was not filled up (zlib's rule for Z_SYNC_FLUSH).
            Status::Ok | Status::BufError if !finish && done_in && out.len() < out.capacity() => return Ok(out),
            Status::Ok | Status::BufError => {}
        }
    }
}

/// Reads up to `len` bytes, fewer only at the end of the input.
fn read_block(input: &mut impl Read, len: usize) -> io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(len);
    input.take(len as u64).read_to_end(&mut data)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::DeflateDecoder;
    use proptest::prelude::*;

    fn roundtrip(data: &[u8], options: DeflateOptions) -> (Vec<u8>, Deflated) {
        let mut seen = Vec::new();
        let mut compressed = Vec::new();
        let totals = deflate(
            data,
            options,
            |chunk| {
                seen.extend_from_slice(chunk);
                Ok(())
            },
            |out| {
                compressed.extend_from_slice(out);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, data);
        assert_eq!(totals.compressed as usize, compressed.len());
        let mut back = Vec::new();
        DeflateDecoder::new(&compressed[..]).read_to_end(&mut back).unwrap();
        (back, totals)
    }

    #[test]
    fn empty_input_is_one_empty_final_block() {
        let (back, totals) = roundtrip(b"", DeflateOptions::default());
        assert!(back.is_empty());
        assert_eq!(totals, Deflated { uncompressed: 0, compressed: 2 });
    }

    #[test]
    fn parallel_ratio_is_close_to_single_stream() {
        let text: Vec<u8> =
            (0..400_000u32).flat_map(|i| format!("{{\"id\":{i},\"v\":\"row-{}\"}}\n", i % 977).into_bytes()).collect();
        let opts = DeflateOptions { level: 6, threads: 2, block: 64 * 1024 };
        let (back, parallel) = roundtrip(&text, opts);
        assert_eq!(back, text);
        let mut single = flate2::write::DeflateEncoder::new(Vec::new(), Compression::new(6));
        std::io::Write::write_all(&mut single, &text).unwrap();
        let single = single.finish().unwrap().len() as f64;
        assert!((parallel.compressed as f64) < single * 1.01, "{} vs {single}", parallel.compressed);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn any_input_any_block_size_round_trips(
            data in proptest::collection::vec(any::<u8>(), 0..300_000),
            repeat in 1usize..4,
            block_kib in 32usize..96,
            threads in 1usize..4,
        ) {
            let data: Vec<u8> = data.iter().copied().cycle().take(data.len() * repeat).collect();
            let (back, totals) = roundtrip(&data, DeflateOptions { level: 6, threads, block: block_kib * 1024 });
            prop_assert_eq!(totals.uncompressed as usize, data.len());
            prop_assert_eq!(back, data);
        }
    }
}
