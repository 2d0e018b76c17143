//! Reads a database directory's `IDENTITY` file, for `rumdb info` only.
//!
//! The library has no public call that reports a directory's format version or page size, so this module
//! decodes the 28-byte file itself, following the format documented in the library's `src/identity.rs`
//! (little-endian): magic `RUMDB-ID` (8 bytes), engine kind (1 byte: 1 LSM, 2 B-tree, 3 model), 3 zero
//! bytes, format version (u32), page size (u32, B-tree only, 0 otherwise), 4 reserved bytes, and the
//! CRC-32 of bytes 0..24 (u32). Which engine a directory holds is found through the public API instead
//! (see `db.rs`); if the library gains a public identity call, this module should go.

use std::path::Path;

/// What `IDENTITY` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdentityInfo {
    /// The engine kind byte: 1 LSM, 2 B-tree, 3 model.
    pub kind_code: u8,
    /// The format version of the engine's files.
    pub format_version: u32,
    /// Bytes per page (B-tree), 0 for engines without pages.
    pub page_size: u32,
}

const LEN: usize = 28;
const MAGIC: &[u8; 8] = b"RUMDB-ID";

/// Reads and checks `dir/IDENTITY`.
///
/// # Errors
/// A message if the file cannot be read, has the wrong length or magic, or fails its CRC.
pub fn read(dir: &Path) -> Result<IdentityInfo, String> {
    let path = dir.join("IDENTITY");
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read IDENTITY: {e}"))?;
    decode(&bytes)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Decodes the 28 bytes of an `IDENTITY` file.
///
/// # Errors
/// A message naming the first check that fails.
pub fn decode(bytes: &[u8]) -> Result<IdentityInfo, String> {
    if bytes.len() != LEN {
        return Err(format!(
            "IDENTITY has {} bytes, expected {LEN}",
            bytes.len()
        ));
    }
    if bytes.get(..8) != Some(&MAGIC[..]) {
        return Err("IDENTITY lacks the magic RUMDB-ID".to_string());
    }
    let stored = u32_at(bytes, 24).ok_or("IDENTITY too short")?;
    let computed = crc32fast::hash(bytes.get(..24).unwrap_or_default());
    if stored != computed {
        return Err(format!(
            "IDENTITY fails its CRC (stored {stored:08x}, computed {computed:08x})"
        ));
    }
    Ok(IdentityInfo {
        kind_code: bytes.get(8).copied().unwrap_or(0),
        format_version: u32_at(bytes, 12).unwrap_or(0),
        page_size: u32_at(bytes, 16).unwrap_or(0),
    })
}
