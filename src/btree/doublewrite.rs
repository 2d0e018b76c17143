//! The doublewrite file: a checkpoint's pages and header slot, written whole and synced before any page is
//! written in place, so a crash that tears pages in place is repaired from it at open.
//!
//! # The doublewrite file
//!
//! All integers little-endian. `n` = page count.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `RUMDB-DW` |
//! | 8 | 4 | format version (the B-tree's, 3) |
//! | 12 | 4 | page size |
//! | 16 | 8 | checkpoint LSN L |
//! | 24 | 4 | page count `n` |
//! | 28 | 32 | zero |
//! | 60 | 4 | CRC-32 of bytes 0..60 followed by bytes 64..end |
//! | 64 | 64 | the header slot the checkpoint writes (its own format and CRC, below) |
//! | 128 | 4 × n | page numbers |
//! | 128 + 4n | page_size × n | the pages, sealed (as they go in place) |
//!
//! The file is valid only if its length is exactly `128 + n × (4 + page_size)` (which also bounds what
//! recovery reads), the CRC matches and the page size is the database's. A complete file with a valid
//! CRC whose header slot or pages do not check is `Corruption` (file `doublewrite` and offset). Bytes are
//! counted as [`WritePurpose::TornPage`]; pages in place as `PageWriteback`, header slots as `Header`.

use crate::error::{Error, Result};
use crate::storage::{File, ReadPurpose, Storage, WritePurpose};

use super::header::{Header, SLOT_BYTES};
use super::page::{self, Geometry, u32_at, u64_at};

/// The doublewrite file's name.
pub(crate) const DOUBLEWRITE_FILE: &str = "doublewrite";
/// Magic at the start of the doublewrite file.
const DW_MAGIC: &[u8; 8] = b"RUMDB-DW";
/// Bytes before the page-number table: the file header (64) and the header slot (64).
const DW_PREFIX: usize = 64 + SLOT_BYTES;

/// A checkpoint's image: the header slot it commits and its pages (page number, sealed bytes).
#[derive(Debug)]
pub(crate) struct Image {
    pub header: Header,
    pub pages: Vec<(u32, Vec<u8>)>,
}

/// Encodes the doublewrite file of `header` and `pages` (each `page_size` bytes, sealed).
pub(crate) fn encode(header: &Header, pages: &[(u32, Vec<u8>)], version: u32) -> Vec<u8> {
    let ps = header.page_size as usize;
    let mut out = Vec::with_capacity(DW_PREFIX + pages.len() * (4 + ps));
    out.extend_from_slice(DW_MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&header.page_size.to_le_bytes());
    out.extend_from_slice(&header.lsn.to_le_bytes());
    out.extend_from_slice(&(pages.len() as u32).to_le_bytes());
    out.resize(64, 0);
    out.extend_from_slice(&header.encode());
    for (pgno, _) in pages {
        out.extend_from_slice(&pgno.to_le_bytes());
    }
    for (_, bytes) in pages {
        out.extend_from_slice(bytes);
    }
    let mut h = crc32fast::Hasher::new();
    h.update(out.get(..60).unwrap_or_default());
    h.update(out.get(64..).unwrap_or_default());
    let crc = h.finalize();
    page::put_at(&mut out, 60, &crc.to_le_bytes());
    out
}

/// Writes the doublewrite file (replacing any), syncs it and the directory.
///
/// # Errors
/// `Io`.
pub(crate) fn write(storage: &Storage, bytes: &[u8]) -> Result<()> {
    if storage.exists(DOUBLEWRITE_FILE)? {
        storage.remove(DOUBLEWRITE_FILE)?;
    }
    let file = storage.create_new(DOUBLEWRITE_FILE)?;
    file.write_at(0, bytes, WritePurpose::TornPage)?;
    file.sync_data()?;
    storage.sync_dir()
}

/// Removes the doublewrite file if it exists (durable after the next directory sync).
///
/// # Errors
/// `Io`.
pub(crate) fn remove(storage: &Storage) -> Result<()> {
    if storage.exists(DOUBLEWRITE_FILE)? {
        storage.remove(DOUBLEWRITE_FILE)?;
    }
    Ok(())
}

/// Reads the doublewrite file: `None` if there is none or it is incomplete or invalid (a checkpoint that
/// never got to write a page in place).
///
/// # Errors
/// `Io`; `UnsupportedVersion` if a valid file has another version.
pub(crate) fn read(storage: &Storage, geo: &Geometry, version: u32) -> Result<Option<Image>> {
    if !storage.exists(DOUBLEWRITE_FILE)? {
        return Ok(None);
    }
    let file: File = storage.open(DOUBLEWRITE_FILE, false)?;
    let len = file.len()?;
    let ps = geo.page_size;
    if len < DW_PREFIX as u64 {
        return Ok(None);
    }
    let mut prefix = vec![0u8; DW_PREFIX];
    file.read_exact_at(0, &mut prefix, ReadPurpose::Recovery)?;
    if !prefix.starts_with(DW_MAGIC) {
        return Ok(None);
    }
    let w = |at| u32_at(&prefix, at).unwrap_or(0);
    let (file_version, page_size, lsn, count) =
        (w(8), w(12), u64_at(&prefix, 16).unwrap_or(0), w(24) as u64);
    // The length check bounds the allocation below by the file's own size.
    let expect = DW_PREFIX as u64 + count * (4 + ps as u64);
    if page_size as usize != ps || len != expect {
        return Ok(None);
    }
    let mut all = vec![0u8; len as usize];
    file.read_exact_at(0, &mut all, ReadPurpose::Recovery)?;
    let mut h = crc32fast::Hasher::new();
    h.update(all.get(..60).unwrap_or_default());
    h.update(all.get(64..).unwrap_or_default());
    if u32_at(&all, 60) != Some(h.finalize()) {
        return Ok(None);
    }
    if file_version != version {
        return Err(Error::UnsupportedVersion {
            found: file_version,
            supported: version,
        });
    }
    let slot = all.get(64..DW_PREFIX).unwrap_or_default();
    let header = match Header::decode(slot, 0, page_size, version)
        .or_else(|_| Header::decode(slot, 1, page_size, version))
    {
        Ok(h) if h.lsn == lsn => h,
        _ => {
            return Err(Error::corruption(
                DOUBLEWRITE_FILE,
                Some(64),
                "the header slot does not match the file header",
            ));
        }
    };
    let table = all
        .get(DW_PREFIX..DW_PREFIX + count as usize * 4)
        .unwrap_or_default();
    let body = all
        .get(DW_PREFIX + count as usize * 4..)
        .unwrap_or_default();
    let mut pages = Vec::with_capacity(count as usize);
    for (i, (n, bytes)) in table.chunks_exact(4).zip(body.chunks_exact(ps)).enumerate() {
        let pgno = u32_at(n, 0).unwrap_or(0);
        if !(2..header.page_count).contains(&pgno) {
            return Err(Error::corruption(
                DOUBLEWRITE_FILE,
                Some((DW_PREFIX + i * 4) as u64),
                format!("page {pgno} outside {} pages", header.page_count),
            ));
        }
        page::check(bytes, pgno, lsn, geo).map_err(|e| {
            Error::corruption(
                DOUBLEWRITE_FILE,
                Some((DW_PREFIX + count as usize * 4 + i * ps) as u64),
                format!("page {pgno}: {e}"),
            )
        })?;
        pages.push((pgno, bytes.to_vec()));
    }
    Ok(Some(Image { header, pages }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::storage::sim::SimBackend;

    fn image(geo: &Geometry) -> (Header, Vec<(u32, Vec<u8>)>) {
        let header = Header {
            version: 1,
            page_size: 512,
            counter: 3,
            lsn: 9,
            root: 2,
            height: 0,
            free_head: 4,
            free_count: 1,
            page_count: 6,
            wal_first: 0,
        };
        let pages = [3u32, 4]
            .iter()
            .map(|&n| {
                let mut p = page::encode_free(0, 7, geo);
                page::seal(&mut p, n);
                (n, p)
            })
            .collect();
        (header, pages)
    }

    #[test]
    fn round_trip_and_every_truncation_or_flip_is_ignored() {
        let geo = Geometry { page_size: 512 };
        let (header, pages) = image(&geo);
        let bytes = encode(&header, &pages, 1);
        assert_eq!(bytes.len(), 128 + 2 * (4 + 512));
        let sim = SimBackend::new(1);
        let storage = Storage::new(Arc::new(sim.clone()));
        assert!(read(&storage, &geo, 1).unwrap().is_none(), "no file");
        write(&storage, &bytes).unwrap();
        let got = read(&storage, &geo, 1).unwrap().unwrap();
        assert_eq!(got.header, header);
        assert_eq!(got.pages, pages);
        for len in (0..bytes.len()).step_by(37) {
            sim.truncate(DOUBLEWRITE_FILE, len as u64).unwrap();
            assert!(read(&storage, &geo, 1).unwrap().is_none(), "length {len}");
            write(&storage, &bytes).unwrap();
        }
        for bit in (0..bytes.len() as u64 * 8).step_by(97) {
            sim.flip_bit(DOUBLEWRITE_FILE, bit).unwrap();
            assert!(read(&storage, &geo, 1).unwrap().is_none(), "bit {bit}");
            write(&storage, &bytes).unwrap();
        }
        remove(&storage).unwrap();
        assert!(!storage.exists(DOUBLEWRITE_FILE).unwrap());
    }
}
