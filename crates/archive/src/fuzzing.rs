//! What the fuzzer runs on the ZIP reader (`fuzz/`), and what the
//! regression tests replay: reading an untrusted archive the way restore
//! does, entry by entry to the end, must end in data or an error, never a
//! panic, a hang or an unbounded allocation.

use std::io::{self, Cursor};

use backup_domain::restore::{RestoreLimits, check_entries};

use crate::read::{ReadLimits, ZipReader};

pub fn read_untrusted_zip(data: &[u8]) {
    let limits = ReadLimits { max_entries: 1000, max_central_directory: 1 << 20 };
    let Ok(mut zip) = ZipReader::open(Cursor::new(data), limits) else { return };
    let declared = crate::open::declared(zip.entries());
    // Restore's own limits decide what is read at all: here, at most 16 MiB.
    let limits = RestoreLimits { max_entry: 16 << 20, max_total: 16 << 20, ..RestoreLimits::default() };
    if check_entries(&declared, data.len() as u64, limits).is_err() {
        return;
    }
    for index in 0..declared.len() {
        if let Ok(mut entry) = zip.open_entry(index) {
            let _ = io::copy(&mut entry, &mut io::sink());
        }
    }
}
