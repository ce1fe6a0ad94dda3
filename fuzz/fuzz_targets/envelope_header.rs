//! The FRMRBKUP v1 preamble and header on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| backup_crypto::envelope::fuzz_header(data));
