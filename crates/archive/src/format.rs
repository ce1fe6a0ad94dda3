//! ZIP record layouts (PKWARE APPNOTE 6.3), the subset backups use:
//! stored and deflated entries, data descriptors, Zip64.

pub(crate) const LOCAL_HEADER: u32 = 0x0403_4b50;
pub(crate) const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
pub(crate) const CENTRAL_HEADER: u32 = 0x0201_4b50;
pub(crate) const END_OF_CENTRAL_DIR: u32 = 0x0605_4b50;
pub(crate) const ZIP64_END_OF_CENTRAL_DIR: u32 = 0x0606_4b50;
pub(crate) const ZIP64_LOCATOR: u32 = 0x0706_4b50;
pub(crate) const ZIP64_EXTRA: u16 = 0x0001;

pub(crate) const METHOD_STORED: u16 = 0;
pub(crate) const METHOD_DEFLATE: u16 = 8;

/// Bit 0: encrypted; bit 3: sizes and CRC follow the data; bit 11: UTF-8 names.
pub(crate) const FLAG_ENCRYPTED: u16 = 1 << 0;
pub(crate) const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
pub(crate) const FLAG_UTF8: u16 = 1 << 11;

/// "Version needed to extract": 2.0 for deflate, 4.5 for Zip64.
pub(crate) const VERSION_DEFLATE: u16 = 20;
pub(crate) const VERSION_ZIP64: u16 = 45;
/// "Version made by": Unix (3) in the high byte, so external attributes are
/// Unix modes.
pub(crate) const MADE_BY_UNIX: u16 = (3 << 8) | VERSION_ZIP64;
/// A regular file, mode 0644.
pub(crate) const REGULAR_FILE_ATTRS: u32 = 0o100_644 << 16;
/// The file-type bits of a Unix mode, and a symbolic link's type.
pub(crate) const S_IFMT: u32 = 0o170_000;
pub(crate) const S_IFLNK: u32 = 0o120_000;
pub(crate) const S_IFREG: u32 = 0o100_000;

pub(crate) const U32_MAX: u64 = 0xFFFF_FFFF;
pub(crate) const U16_MAX: u64 = 0xFFFF;

/// Little-endian field writer.
#[derive(Debug, Default)]
pub(crate) struct Le(pub(crate) Vec<u8>);

impl Le {
    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
}

/// Little-endian field reader over a record already in memory.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
    }
    pub(crate) fn position(&self) -> usize {
        self.pos
    }
}

/// MS-DOS date and time, as ZIP stores them (two-second resolution,
/// 1980-2107); times outside that range are clamped.
pub(crate) fn dos_date_time(at: time::OffsetDateTime) -> (u16, u16) {
    let at = at.to_offset(time::UtcOffset::UTC);
    let year = at.year().clamp(1980, 2107);
    if year != at.year() {
        let day = if year == 1980 { 1 } else { 31 };
        let month = if year == 1980 { 1 } else { 12 };
        return (((year - 1980) as u16) << 9 | month << 5 | day, 0);
    }
    let date = ((year - 1980) as u16) << 9 | (u8::from(at.month()) as u16) << 5 | at.day() as u16;
    let time = (at.hour() as u16) << 11 | (at.minute() as u16) << 5 | (at.second() as u16 / 2);
    (date, time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn dos_times() {
        assert_eq!(dos_date_time(datetime!(1980-01-01 00:00:00 UTC)), (0x0021, 0));
        let (d, t) = dos_date_time(datetime!(2026-11-26 22:17:29 UTC));
        assert_eq!((d >> 9, (d >> 5) & 0xF, d & 0x1F), (46, 11, 26));
        assert_eq!((t >> 11, (t >> 5) & 0x3F, (t & 0x1F) * 2), (22, 17, 28));
        assert_eq!(dos_date_time(datetime!(1970-01-01 00:00:00 UTC)), (0x0021, 0));
    }
}
