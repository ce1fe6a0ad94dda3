//! The ZIP reader on arbitrary bytes: every archive restore or verify may
//! be handed. It must never panic, hang or allocate without bound; every
//! problem is an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| backup_archive::fuzzing::read_untrusted_zip(data));
