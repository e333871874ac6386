//! Blocks compressed and written on a thread beside the archiver. Placing
//! events (scanning, routing, Avro encoding) and compressing their blocks
//! take about the same time; on a second core they overlap instead of
//! adding up (zstd was 38% of `archive --format ndjson.zst`).
//!
//! Blocks are written in the order they are handed over: one worker takes
//! them first in, first out, so a file's blocks land in its order, and a
//! ticket says when a given block is on disk. Memory stays bounded: a few
//! blocks wait at most, and their buffers come back for reuse.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;

use anyhow::{Context, Result};

use super::avro::{self, BlockCodec};
use super::commit::TempFile;
use super::ndjson::{BlockCompressor, Compression};

/// Blocks waiting for the worker beyond the one it compresses.
const QUEUED: usize = 2;

/// How a block is framed in its file.
pub enum Framing {
    /// One zstd frame or gzip member of NDJSON lines.
    Ndjson,
    /// An Avro data block: count and size, the codec's bytes, the sync marker.
    Avro {
        /// The records in the block.
        events: u64,
        /// The file's sync marker.
        sync: [u8; 16],
    },
}

/// A ticket for a handed-over block: [`BlockWriter::wait_for`] returns once
/// it (and every block handed over before it) is written.
pub type Ticket = u64;

struct Job {
    ticket: Ticket,
    block: Vec<u8>,
    framing: Framing,
    file: File,
    path: PathBuf,
}

struct Done {
    ticket: Ticket,
    block: Vec<u8>,
    result: Result<()>,
}

/// Compresses and writes blocks on its own thread.
pub struct BlockWriter {
    jobs: Option<mpsc::SyncSender<Job>>,
    done: mpsc::Receiver<Done>,
    worker: Option<thread::JoinHandle<()>>,
    handed: Ticket,
    written: Ticket,
    /// Buffers the worker gave back, for the next blocks.
    spare: Vec<Vec<u8>>,
}

impl BlockWriter {
    /// Starts the worker: NDJSON blocks compressed by `compression`, Avro
    /// blocks by `codec`.
    pub fn start(codec: BlockCodec, compression: Compression) -> Result<BlockWriter> {
        let mut compressor = BlockCompressor::new(compression)?;
        let (jobs, inbox) = mpsc::sync_channel::<Job>(QUEUED);
        let (outbox, done) = mpsc::channel::<Done>();
        let worker = thread::Builder::new()
            .name("compress".into())
            .spawn(move || {
                let mut out = Vec::new();
                for mut job in inbox {
                    let result = write_block(&mut job, codec, &mut compressor, &mut out);
                    job.block.clear();
                    let reply = Done {
                        ticket: job.ticket,
                        block: job.block,
                        result,
                    };
                    if outbox.send(reply).is_err() {
                        break;
                    }
                }
            })
            .context("cannot start the compressing thread")?;
        Ok(BlockWriter {
            jobs: Some(jobs),
            done,
            worker: Some(worker),
            handed: 0,
            written: 0,
            spare: Vec::new(),
        })
    }

    /// Hands `block` (the events of one block of `file`) to the worker and
    /// leaves an empty buffer in its place. An error is a block handed over
    /// earlier that could not be written.
    pub fn hand_over(
        &mut self,
        file: &TempFile,
        block: &mut Vec<u8>,
        framing: Framing,
    ) -> Result<Ticket> {
        self.collect(false)?;
        let replacement = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(block.capacity()));
        let block = std::mem::replace(block, replacement);
        self.handed += 1;
        let job = Job {
            ticket: self.handed,
            block,
            framing,
            file: file.handle()?,
            path: file.path(),
        };
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        if !matches!(sent, Some(Ok(()))) {
            // The worker is gone: its last reply says why.
            self.collect(true)?;
            anyhow::bail!("the compressing thread stopped");
        }
        Ok(self.handed)
    }

    /// Waits until the block of `ticket`, and all before it, are written.
    pub fn wait_for(&mut self, ticket: Ticket) -> Result<()> {
        while self.written < ticket {
            self.receive(true)?;
        }
        Ok(())
    }

    /// Takes the worker's replies: every one that is there, or (`wait`)
    /// until it has none left to give.
    fn collect(&mut self, wait: bool) -> Result<()> {
        while self.written < self.handed {
            if !self.receive(wait)? {
                break;
            }
        }
        Ok(())
    }

    /// Takes one reply; false when none is there without waiting.
    fn receive(&mut self, wait: bool) -> Result<bool> {
        let reply = if wait {
            match self.done.recv() {
                Ok(r) => r,
                Err(_) => anyhow::bail!("the compressing thread stopped"),
            }
        } else {
            match self.done.try_recv() {
                Ok(r) => r,
                Err(_) => return Ok(false),
            }
        };
        self.written = reply.ticket;
        if self.spare.len() < QUEUED + 1 {
            self.spare.push(reply.block);
        }
        reply.result.map(|()| true)
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        // Closing the queue ends the worker once it has written what it has.
        self.jobs = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Compresses and frames one block into `out`, then appends it to its file.
fn write_block(
    job: &mut Job,
    codec: BlockCodec,
    compressor: &mut BlockCompressor,
    out: &mut Vec<u8>,
) -> Result<()> {
    let written = match &job.framing {
        Framing::Ndjson => {
            compressor.compress(&job.block, out)?;
            job.file.write_all(out)
        }
        Framing::Avro { events, sync } => {
            codec.compress_into(&job.block, out)?;
            // Framed as it is written: the block is not copied once more.
            job.file
                .write_all(&avro::block_head(*events, out.len()))
                .and_then(|()| job.file.write_all(out))
                .and_then(|()| job.file.write_all(sync))
        }
    };
    written.with_context(|| format!("cannot write {}", job.path.display()))
}
