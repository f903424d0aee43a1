//! Plain log files, streamed: read in chunks that each start at a record,
//! evaluated on every core, folded in file order.
//!
//! A plain file on disk is mapped into memory a window at a time
//! ([`MappedChunker`]): `read()` copied every byte out of the page cache
//! first, a fifth of replay's time. Compressed files and pipes are read
//! ([`Chunker`]).
//!
//! Memory stays bounded by a few chunks whatever the file size, and the
//! result is the sequential one: each chunk begins at a record (so no
//! event is split and the parser needs no state from the chunk before),
//! and the metric updates are folded through one cardinality guard in the
//! order of the file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;

use memmap2::{Mmap, MmapOptions};

use monitoring_core::domain::logs::parse::{ParseSettings, split_events, starts_record};
use monitoring_core::domain::logs::record::EventRef;
use monitoring_core::domain::logs::redact::Redactor;
use monitoring_core::domain::pipeline::{Aggregator, Evaluated, Evaluator};
use monitoring_core::domain::rules::RuleSet;

/// Bytes read per chunk.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Bytes per read call.
const READ_BYTES: usize = 1 << 20;

/// A run of lines with no record start longer than this is cut at a line
/// end anyway, so a file without records cannot grow the buffer without
/// bound. Each piece is then an event of its own (rejected as oversized or
/// unparsed) instead of one event.
pub const MAX_CARRY_BYTES: usize = 64 << 20;

/// Chunks per worker in flight: enough to keep every core busy while the
/// reader decompresses the next one, few enough to keep memory flat.
const IN_FLIGHT: usize = 2;

/// The bytes of one chunk: read into a buffer, or mapped from the file.
pub enum Chunk {
    Owned(Vec<u8>),
    Mapped { map: Mmap, len: usize },
}

impl Chunk {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(bytes) => bytes,
            Chunk::Mapped { map, len } => &map[..*len],
        }
    }
}

/// Where chunks come from: each starts at a record and ends before one (or
/// at the end of the input).
pub trait ChunkSource: Send {
    /// The next chunk and its offset in the input; `None` at the end.
    fn next_chunk(&mut self) -> io::Result<Option<(u64, Chunk)>>;

    /// Hands back the buffers of chunks already evaluated, to read into
    /// again; `max` bounds how many may exist. Sources that own no
    /// buffer ignore it.
    fn recycle_from(&mut self, buffers: Receiver<Vec<u8>>, max: usize) {
        let _ = (buffers, max);
    }
}

/// Splits a byte stream into chunks that end at a line end followed by a
/// record start (or at the end of the stream).
pub struct Chunker<R> {
    reader: R,
    carry: Vec<u8>,
    eof: bool,
    /// Offset in the stream of the next chunk's first byte.
    offset: u64,
    /// Buffers of chunks already evaluated, to read into again: fresh
    /// pages would cost a page fault each.
    recycled: Option<Receiver<Vec<u8>>>,
    /// Buffers made so far, and how many may exist: past that, the reader
    /// waits for one to come back (which also bounds memory).
    buffers: usize,
    max_buffers: usize,
}

impl<R: Read> Chunker<R> {
    /// `head` is what was already read from `reader`.
    pub fn new(head: Vec<u8>, reader: R) -> Self {
        Chunker {
            reader,
            carry: head,
            eof: false,
            offset: 0,
            recycled: None,
            buffers: 0,
            max_buffers: usize::MAX,
        }
    }

    /// A buffer holding the carried-over bytes, with room for a chunk.
    fn buffer(&mut self) -> Vec<u8> {
        let spare = match &self.recycled {
            Some(r) if self.buffers >= self.max_buffers => r.recv().ok(),
            Some(r) => r.try_recv().ok(),
            None => None,
        };
        let mut buf = spare.unwrap_or_else(|| {
            self.buffers += 1;
            Vec::with_capacity(2 * CHUNK_BYTES)
        });
        buf.clear();
        buf.extend_from_slice(&self.carry);
        self.carry.clear();
        buf
    }

    /// The next chunk and its offset in the stream; `None` at the end.
    pub fn next_buffer(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        let mut buf = self.buffer();
        let mut want = CHUNK_BYTES;
        // What earlier passes of this loop searched for a cut.
        let mut searched = 0;
        loop {
            buf.reserve(want.saturating_sub(buf.len()));
            while buf.len() < want && !self.eof {
                // read_to_end fills spare capacity without zeroing it first;
                // reads of 1 MiB copy out of the page cache faster here than
                // one read of the whole chunk.
                let wanted = (want - buf.len()).min(READ_BYTES) as u64;
                let n = (&mut self.reader).take(wanted).read_to_end(&mut buf)?;
                if (n as u64) < wanted {
                    self.eof = true;
                }
            }
            if self.eof {
                if buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.emit(buf, None)));
            }
            if let Some(cut) = find_cut(&buf, searched) {
                return Ok(Some(self.emit(buf, Some(cut))));
            }
            searched = buf.len();
            if buf.len() >= MAX_CARRY_BYTES
                && let Some(nl) = buf.iter().rposition(|b| *b == b'\n')
            {
                return Ok(Some(self.emit(buf, Some(nl + 1))));
            }
            want = buf.len() + CHUNK_BYTES;
        }
    }

    fn emit(&mut self, mut buf: Vec<u8>, cut: Option<usize>) -> (u64, Vec<u8>) {
        if let Some(cut) = cut {
            self.carry = buf.split_off(cut);
        }
        let offset = self.offset;
        self.offset += buf.len() as u64;
        (offset, buf)
    }
}

impl<S: ChunkSource + ?Sized> ChunkSource for Box<S> {
    fn next_chunk(&mut self) -> io::Result<Option<(u64, Chunk)>> {
        (**self).next_chunk()
    }

    fn recycle_from(&mut self, buffers: Receiver<Vec<u8>>, max: usize) {
        (**self).recycle_from(buffers, max);
    }
}

impl<R: Read + Send> ChunkSource for Chunker<R> {
    fn next_chunk(&mut self) -> io::Result<Option<(u64, Chunk)>> {
        Ok(self
            .next_buffer()?
            .map(|(offset, buf)| (offset, Chunk::Owned(buf))))
    }

    /// Reads into at most `max` buffers, taking them back from `buffers`
    /// once their chunks are evaluated.
    fn recycle_from(&mut self, buffers: Receiver<Vec<u8>>, max: usize) {
        self.recycled = Some(buffers);
        self.max_buffers = max.max(1);
    }
}

/// Chunks of a regular file, each its own read-only mapping: unmapped once
/// evaluated, so memory stays bounded as with [`Chunker`], and no byte is
/// copied.
pub struct MappedChunker {
    file: File,
    len: u64,
    offset: u64,
}

impl MappedChunker {
    /// Maps `file` from its start; `None` when it is not a regular file
    /// (a pipe or a device: read those with [`Chunker`]).
    pub fn new(file: File) -> io::Result<Option<Self>> {
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Ok(None);
        }
        Ok(Some(MappedChunker {
            len: meta.len(),
            file,
            offset: 0,
        }))
    }
}

impl ChunkSource for MappedChunker {
    fn next_chunk(&mut self) -> io::Result<Option<(u64, Chunk)>> {
        let start = self.offset;
        if start >= self.len {
            return Ok(None);
        }
        let mut want = CHUNK_BYTES as u64;
        // What the smaller windows before this one searched for a cut.
        let mut searched = 0;
        loop {
            let len = usize::try_from((self.len - start).min(want))
                .map_err(|_| io::Error::other("window larger than the address space"))?;
            let map = map_window(&self.file, start, len)?;
            let cut = if start + len as u64 >= self.len {
                Some(len)
            } else {
                find_cut(&map, searched).or_else(|| {
                    (len >= MAX_CARRY_BYTES)
                        .then(|| map.iter().rposition(|b| *b == b'\n').map(|nl| nl + 1))
                        .flatten()
                })
            };
            if let Some(cut) = cut {
                self.offset = start + cut as u64;
                return Ok(Some((start, Chunk::Mapped { map, len: cut })));
            }
            searched = len;
            want += CHUNK_BYTES as u64;
        }
    }
}

/// Maps `len` bytes of `file` from `offset`, read-only, with the pages
/// already in memory mapped in one go (`MAP_POPULATE`) by the reading
/// thread rather than faulted in one by one by the workers.
#[allow(unsafe_code)]
fn map_window(file: &File, offset: u64, len: usize) -> io::Result<Mmap> {
    let mut options = MmapOptions::new();
    options.offset(offset).len(len).populate();
    // SAFETY: the mapping is read-only and private to this process; what
    // memmap2 cannot promise is that no other process truncates or
    // rewrites the file meanwhile. Replay reads finished log files (a
    // truncation mid-run ends the process with SIGBUS, as for any tool
    // that maps files, e.g. ripgrep); bytes changed under it are at worst
    // counted as they read when touched. They are only ever read as bytes
    // and validated as UTF-8 before use.
    unsafe { options.map(file) }
}

/// The start of the last line that begins a record, when a line end comes
/// before it: cutting there ends the chunk with complete events.
///
/// `searched` bytes at the start of `buf` were searched already, by a pass
/// over a shorter buffer (0 for none): only lines from the last of them
/// on (which may have been unfinished then) are looked at again. So a run
/// of lines without a record costs one pass, not one per growth of the
/// buffer (quadratic up to [`MAX_CARRY_BYTES`]).
fn find_cut(buf: &[u8], searched: usize) -> Option<usize> {
    let floor = buf[..searched.min(buf.len())]
        .iter()
        .rposition(|b| *b == b'\n')
        .unwrap_or(0);
    let mut end = buf.len();
    while let Some(nl) = buf[..end].iter().rposition(|b| *b == b'\n') {
        if nl < floor {
            break;
        }
        let start = nl + 1;
        let line_end = buf[start..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(buf.len(), |i| start + i);
        // Enough of the line to tell whether it continues a record (an
        // exception name before its colon); an unfinished line is left for
        // the next read, as its end may change the answer.
        let line = &buf[start..line_end.min(start + 256)];
        let complete = line_end < buf.len();
        if start > 0 && complete && starts_record(&utf8_prefix(line)) {
            return Some(start);
        }
        end = nl;
    }
    None
}

/// The valid UTF-8 prefix of `bytes` (a cut may split a character).
fn utf8_prefix(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.into(),
        Err(e) => String::from_utf8_lossy(&bytes[..e.valid_up_to()]),
    }
}

/// What the fold needs besides the series.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamCounts {
    pub signals: u64,
}

/// Evaluates every chunk of `chunker` on `workers` threads and folds the
/// results into `aggregator` in stream order. Event ids are
/// `<name>@<byte offset>`. Signals (without sample lines) are kept, moved
/// into the aggregator's report, only when `keep_signals`; otherwise only
/// counted.
///
/// Workers take the next chunk from one shared queue, whichever is free,
/// and the fold puts the results back in stream order. Dealing chunk `k`
/// to worker `k % n` tied every worker to the slowest: when one core is
/// slowed for a while (another process, or a VM's neighbours), the other
/// waited for it, and at the end of a file one worker still had up to
/// three chunks left while the other sat idle. At most `IN_FLIGHT + 1`
/// chunks per worker are out (read, queued, evaluated but not folded),
/// which bounds memory as before.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_stream<S: ChunkSource>(
    mut chunker: S,
    name: &str,
    rules: &RuleSet,
    redactor: &Redactor,
    settings: ParseSettings,
    workers: usize,
    keep_signals: bool,
    aggregator: &mut Aggregator<'_>,
) -> io::Result<StreamCounts> {
    let workers = workers.max(1);
    let mut counts = StreamCounts::default();
    let out = workers * (IN_FLIGHT + 1);
    // Each chunk out holds a buffer; one more is being read.
    let buffers = out + 1;
    let (recycle_tx, recycle_rx) = sync_channel::<Vec<u8>>(buffers);
    chunker.recycle_from(recycle_rx, buffers);
    // A chunk goes out only with a ticket, which the fold hands back
    // once it has folded a chunk: so the results waiting for an earlier
    // one to be folded are bounded too.
    let (ticket_tx, ticket_rx) = sync_channel::<()>(out);
    for _ in 0..out {
        let _ = ticket_tx.try_send(());
    }
    // Room for every chunk out: the reader waits for tickets only, never
    // for the queue (which no one may be taking from, see below).
    let (chunk_tx, chunk_rx) = sync_channel::<Job>(out);
    let chunk_rx = Mutex::new(chunk_rx);
    // Never full: at most `out` results exist. `None` says a worker
    // panicked (see `Reports`).
    let (result_tx, result_rx) = sync_channel::<Option<(u64, Evaluated)>>(out);
    // The fold's emptied buffers, for the workers to evaluate into again.
    let spares: Mutex<Vec<Evaluated>> = Mutex::new(Vec::new());
    thread::scope(|scope| -> io::Result<()> {
        for _ in 0..workers {
            let jobs = &chunk_rx;
            let spares = &spares;
            let results = result_tx.clone();
            let recycle = recycle_tx.clone();
            scope.spawn(move || {
                worker(
                    jobs,
                    results,
                    spares,
                    recycle,
                    name,
                    rules,
                    redactor,
                    settings,
                    keep_signals,
                )
            });
        }
        // Only the workers hold these senders now: when the workers are
        // gone, the reader stops waiting for buffers and the fold ends.
        drop(recycle_tx);
        drop(result_tx);
        let reader = scope.spawn(move || -> io::Result<()> {
            let mut k = 0;
            while ticket_rx.recv().is_ok() {
                let Some((offset, chunk)) = chunker.next_chunk()? else {
                    break;
                };
                if chunk_tx.send(Job { k, offset, chunk }).is_err() {
                    break;
                }
                k += 1;
            }
            Ok(())
        });
        // Results by chunk number, until the next one in order arrives.
        let mut waiting: BTreeMap<u64, Evaluated> = BTreeMap::new();
        let mut next = 0;
        // A chunk whose worker panicked never comes: the fold stops, and
        // with it the reader (no more tickets) and the other workers (no
        // one to take their results); the scope then passes the panic on.
        while let Ok(Some((k, evaluated))) = result_rx.recv() {
            waiting.insert(k, evaluated);
            while let Some(mut evaluated) = waiting.remove(&next) {
                counts.signals += evaluated.evaluation.signals.len() as u64
                    + evaluated.evaluation.signals_counted;
                if !keep_signals {
                    evaluated.evaluation.signals.clear();
                }
                let spare = aggregator.add_and_return(evaluated);
                lock(&spares).push(spare);
                // Fails only once the reader has stopped.
                let _ = ticket_tx.try_send(());
                next += 1;
            }
        }
        drop(ticket_tx);
        drop(result_rx);
        reader
            .join()
            .map_err(|_| io::Error::other("the reader thread panicked"))?
    })?;
    Ok(counts)
}

/// A worker's line to the fold, which tells the fold when the worker dies
/// in a panic: otherwise the fold would wait for its chunk for ever.
struct Reports(SyncSender<Option<(u64, Evaluated)>>);

impl Drop for Reports {
    fn drop(&mut self) {
        if thread::panicking() {
            let _ = self.0.send(None);
        }
    }
}

/// A chunk to evaluate, with its number in the stream.
struct Job {
    k: u64,
    offset: u64,
    chunk: Chunk,
}

/// The guarded value even if a thread panicked holding the lock: the
/// queue and the spares stay usable (a panic is reported by the scope).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[allow(clippy::too_many_arguments)]
fn worker(
    jobs: &Mutex<Receiver<Job>>,
    results: SyncSender<Option<(u64, Evaluated)>>,
    spares: &Mutex<Vec<Evaluated>>,
    recycle: SyncSender<Vec<u8>>,
    name: &str,
    rules: &RuleSet,
    redactor: &Redactor,
    settings: ParseSettings,
    keep_signals: bool,
) {
    let results = Reports(results);
    // Own copies: a regex shared between threads hands its scratch caches
    // around through a pool and drops them under contention, so the lazy
    // DFAs keep being rebuilt; a clone has its own pool.
    let rules = rules.clone();
    let redactor = redactor.clone();
    // Replay prints no sample line, and redacting each would be most of
    // the work.
    let mut evaluator = Evaluator::new(&rules, &redactor, settings).without_samples();
    if !keep_signals {
        evaluator = evaluator.counting_signals_only();
    }
    // The fold, on one thread, then applies one update per counter series
    // and chunk rather than one per record.
    evaluator = evaluator.coalescing_counters();
    let mut id = String::new();
    loop {
        // The lock is held while waiting (the other workers wait for it
        // instead of for the queue, which comes to the same), and only
        // then: a guard in the `while let` would live through the body.
        let job = lock(jobs).recv();
        let Ok(Job { k, offset, chunk }) = job else {
            return;
        };
        let bytes = chunk.bytes();
        #[cfg(test)]
        assert!(bytes != b"panic\n", "a test asked this worker to panic");
        // Checked in place with SIMD (std's check took 6% of the time).
        let lossy: String;
        let text = match simdutf8::basic::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                lossy = String::from_utf8_lossy(bytes).into_owned();
                lossy.as_str()
            }
        };
        // Each chunk starts a stream: it begins at a record.
        evaluator.reset_stream();
        let base = text.as_ptr() as usize;
        id.clear();
        id.push_str(name);
        id.push('@');
        let prefix = id.len();
        for message in split_events(text) {
            // Only a signal shows its event's id: without kept signals,
            // none is built.
            let event_id = if keep_signals {
                id.truncate(prefix);
                let at = offset + (message.as_ptr() as usize - base) as u64;
                push_decimal(&mut id, at);
                id.as_str()
            } else {
                name
            };
            evaluator.push(EventRef {
                id: event_id,
                timestamp_ms: 0,
                message,
            });
        }
        // Room for every buffer: this never blocks. A mapped chunk is
        // unmapped here.
        if let Chunk::Owned(buffer) = chunk {
            let _ = recycle.try_send(buffer);
        }
        let spare = lock(spares).pop().unwrap_or_default();
        if results
            .0
            .send(Some((k, evaluator.take_reusing(spare))))
            .is_err()
        {
            return;
        }
    }
}

/// `n` in decimal: `write!` costs more than the rest of an event id.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|d| char::from(*d)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_of(text: &str) -> Vec<String> {
        let mut chunker = Chunker::new(Vec::new(), text.as_bytes());
        let mut out = Vec::new();
        while let Some((_, c)) = chunker.next_buffer().unwrap() {
            out.push(String::from_utf8(c).unwrap());
        }
        out
    }

    #[test]
    fn cuts_only_before_a_record() {
        let record = "2025-05-18 07:42:54,855 - app - ERROR - boom\n";
        let traceback = "Traceback (most recent call last):\n  File \"x.py\", line 1\n";
        let mut text = String::new();
        while text.len() < 3 * CHUNK_BYTES {
            text.push_str(record);
            text.push_str(traceback);
            text.push_str("{\"level\":\"INFO\",\"message\":\"ok\"}\n");
        }
        let chunks = chunks_of(&text);
        assert!(chunks.len() >= 3, "{}", chunks.len());
        assert_eq!(chunks.concat(), text, "nothing lost or repeated");
        for c in &chunks[1..] {
            assert!(starts_record(c.lines().next().unwrap()), "{:?}", &c[..40]);
        }
        let events: usize = chunks.iter().map(|c| split_events(c).count()).sum();
        assert_eq!(events, split_events(&text).count());
    }

    /// A file in the temporary directory, removed when dropped.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn with(name: &str, bytes: &[u8]) -> Self {
            let path = std::env::temp_dir().join(format!("replay-{}-{name}", std::process::id()));
            std::fs::write(&path, bytes).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn mapped_chunks_are_the_read_chunks() {
        let record = "2025-05-18 07:42:54,855 - app - ERROR - boom\n";
        let traceback = "Traceback (most recent call last):\n  File \"x.py\", line 1\n";
        let mut text = String::new();
        while text.len() < 3 * CHUNK_BYTES + 12345 {
            text.push_str(record);
            text.push_str(traceback);
            text.push_str("{\"level\":\"INFO\",\"message\":\"ok\"}\n");
        }
        // One record longer than a window: the window grows to hold it.
        text.push_str(record.trim_end());
        text.push_str(&"\n  continued".repeat(CHUNK_BYTES / 8));
        text.push('\n');
        text.push_str(record);
        let file = TempFile::with("mapped", text.as_bytes());
        let mut mapped = MappedChunker::new(std::fs::File::open(&file.0).unwrap())
            .unwrap()
            .unwrap();
        let mut got = Vec::new();
        while let Some((offset, chunk)) = mapped.next_chunk().unwrap() {
            got.push((offset, chunk.bytes().to_vec()));
        }
        let mut read = Chunker::new(Vec::new(), text.as_bytes());
        let mut want = Vec::new();
        while let Some(chunk) = read.next_buffer().unwrap() {
            want.push(chunk);
        }
        assert!(got.len() >= 4, "{}", got.len());
        assert!(
            got.iter().any(|(_, c)| c.len() > CHUNK_BYTES),
            "the long record's window grew"
        );
        assert_eq!(got, want, "same cuts as reading the file");
        assert_eq!(got.concat_bytes(), text.as_bytes());
    }

    trait ConcatBytes {
        fn concat_bytes(&self) -> Vec<u8>;
    }

    impl ConcatBytes for Vec<(u64, Vec<u8>)> {
        fn concat_bytes(&self) -> Vec<u8> {
            self.iter().flat_map(|(_, c)| c.iter().copied()).collect()
        }
    }

    #[test]
    fn empty_files_and_pipes_are_not_mapped() {
        let file = TempFile::with("empty", b"");
        let mut mapped = MappedChunker::new(std::fs::File::open(&file.0).unwrap())
            .unwrap()
            .unwrap();
        assert!(mapped.next_chunk().unwrap().is_none());
        let dir = std::fs::File::open(std::env::temp_dir()).unwrap();
        assert!(
            MappedChunker::new(dir).unwrap().is_none(),
            "not a regular file"
        );
    }

    #[test]
    fn a_file_without_records_is_cut_at_line_ends() {
        let line = "no record here, just text\n";
        let text = line.repeat(MAX_CARRY_BYTES / line.len() + 10);
        let chunks = chunks_of(&text);
        assert!(chunks.len() >= 2);
        assert!(chunks.iter().all(|c| c.ends_with('\n')));
        assert_eq!(chunks.concat(), text);
    }

    #[test]
    fn a_search_resumed_after_growth_finds_the_cut_a_full_search_finds() {
        let record = "2025-05-18 07:42:54,855 - app - INFO - ok\n";
        let json = "{\"message\":\"ok\"}\n";
        let bare = "  continued line\n";
        let mut text = bare.repeat(9);
        for i in 0..12 {
            text.push_str(match i % 5 {
                0 => record,
                3 => json,
                _ => bare,
            });
        }
        let bytes = text.as_bytes();
        // Every way of growing a buffer in which no cut was found, from
        // `a` bytes to `b` bytes (a run of bare lines, then records).
        let mut resumed = 0;
        for a in 0..=bytes.len() {
            if find_cut(&bytes[..a], 0).is_some() {
                continue;
            }
            for b in a..=bytes.len() {
                let full = find_cut(&bytes[..b], 0);
                assert_eq!(
                    find_cut(&bytes[..b], a),
                    full,
                    "grown from {a} to {b} bytes"
                );
                resumed += 1;
            }
        }
        assert!(resumed > 1000, "{resumed}");
    }

    #[test]
    fn decimal_ids() {
        for n in [0, 7, 10, 1234567890, u64::MAX] {
            let mut s = String::from("f@");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("f@{n}"));
        }
    }

    /// Chunks handed out as given.
    struct Pieces(std::collections::VecDeque<(u64, Vec<u8>)>);

    impl ChunkSource for Pieces {
        fn next_chunk(&mut self) -> io::Result<Option<(u64, Chunk)>> {
            Ok(self.0.pop_front().map(|(at, b)| (at, Chunk::Owned(b))))
        }
    }

    /// What `workers` threads make of `text` cut into chunks of `per`
    /// lines: the report, printed, and its series (sorted: the report
    /// keeps them in a hash map).
    type Folded = (
        String,
        Vec<(
            monitoring_core::domain::metrics::series::SeriesKey,
            monitoring_core::domain::metrics::aggregate::SeriesDelta,
            u64,
        )>,
    );

    fn report_of(text: &str, per: usize, workers: usize) -> Folded {
        use monitoring_core::domain::metrics::aggregate::CardinalityGuard;
        let rules = RuleSet::default_rules().unwrap();
        let redactor = Redactor::new(b"0123456789abcdef0123").unwrap();
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut pieces = std::collections::VecDeque::new();
        let mut at = 0;
        for group in lines.chunks(per) {
            let bytes = group.concat().into_bytes();
            let len = bytes.len() as u64;
            pieces.push_back((at, bytes));
            at += len;
        }
        let mut guard = CardinalityGuard::default();
        let mut aggregator = Aggregator::new(&mut guard);
        let counts = evaluate_stream(
            Pieces(pieces),
            "f",
            &rules,
            &redactor,
            ParseSettings::default(),
            workers,
            true,
            &mut aggregator,
        )
        .unwrap();
        let r = aggregator.finish();
        // The signals in stream order: each names its event's offset.
        let printed = format!(
            "{counts:?} {} {} {:?} {:?} {:?} {:?}\n{:?}",
            r.events, r.records, r.formats, r.rejected, r.parse, r.signal_counts, r.signals,
        );
        let series = r
            .metrics
            .sorted_with_updates()
            .into_iter()
            .map(|(k, d, n)| (k.clone(), d.clone(), n))
            .collect();
        (printed, series)
    }

    #[test]
    fn workers_taking_chunks_as_they_come_fold_them_in_stream_order() {
        // Failed logins from a few addresses (signals with event ids,
        // counters), requests (histograms), and text lines, some chunks
        // much dearer than others so that workers finish out of order.
        let mut text = String::new();
        for i in 0..600 {
            let ip = i % 7;
            text.push_str(&format!(
                "{{\"timestamp\":\"2025-05-20T10:30:{:02}.000Z\",\"level\":\"WARNING\",\"logger\":\"security\",\"message\":\"Authentication attempt\",\"user_id\":\"u{i}\",\"ip_address\":\"203.0.113.{ip}\",\"success\":false,\"endpoint\":\"/api/auth/login\",\"duration_ms\":{i}.5}}\n",
                i % 60
            ));
            if i % 50 == 0 {
                for _ in 0..40 {
                    text.push_str("{\"level\":\"INFO\",\"logger\":\"performance\",\"message\":\"API request completed\",\"endpoint\":\"/api/roles/12\",\"method\":\"GET\",\"status_code\":500,\"duration_ms\":3.0}\n");
                }
            }
            text.push_str(&format!(
                "2025-05-20 10:31:{:02},130 - app.core.security - ERROR - Database error: connection {i} refused\n",
                i % 60
            ));
        }
        let one = report_of(&text, 3, 1);
        assert!(one.0.contains("auth_failures"), "{}", one.0);
        assert!(one.1.len() > 8, "{:?}", one.1);
        for workers in [2, 5] {
            assert_eq!(report_of(&text, 3, workers), one, "{workers} workers");
        }
    }

    #[test]
    fn a_worker_that_panics_stops_the_stream_instead_of_hanging_it() {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let outcome = std::panic::catch_unwind(|| {
                let mut text = String::new();
                for i in 0..400 {
                    text.push_str(&format!("{{\"level\":\"INFO\",\"message\":\"m{i}\"}}\n"));
                    if i == 37 {
                        text.push_str("panic\n");
                    }
                }
                report_of(&text, 1, 3)
            });
            let _ = done_tx.send(outcome.is_err());
        });
        let panicked = done_rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("evaluate_stream hung after a worker panicked");
        assert!(panicked, "the worker's panic was passed on");
    }

    #[test]
    fn small_inputs_are_one_chunk() {
        assert_eq!(chunks_of(""), Vec::<String>::new());
        assert_eq!(chunks_of("{\"a\":1}"), ["{\"a\":1}"]);
    }
}
