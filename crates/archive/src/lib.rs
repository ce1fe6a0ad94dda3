//! The backup archive: a ZIP laid out as Framerr lays it out (spec section
//! 3), written in one streaming pass with parallel deflate and per-entry
//! SHA-256, and read back with every check a hostile file calls for.
//!
//! The ZIP code is our own rather than async_zip's: async_zip's streamed
//! "precompressed" entry needs the CRC before the data, which rules out
//! single-pass parallel deflate, and its reader is mid-rewrite. What we need
//! of ZIP is small (deflate, data descriptors, Zip64), and owning it lets the
//! reader refuse hostile input without trusting a third party's edge cases.

mod archiver;
mod deflate;
mod format;
pub mod fuzzing;
mod open;
mod read;
mod write;

pub use archiver::ZipArchiver;
pub use deflate::{DeflateOptions, Deflated, deflate};
pub use open::ZipBackupReader;
pub use read::{EntryInfo, EntryReader, ReadLimits, ZipError, ZipReader};
pub use write::ZipWriter;
