//! Entry points for the fuzz targets that feed the B-tree's decoders directly (feature `testing`): one
//! page, and the two header slots. They return a description of a violated property, so the harness in
//! [`crate::testing::fuzz`] decides how to report it.

use super::BTREE_FORMAT_VERSION;
use super::header::{Header, SLOT_BYTES};
use super::page::{
    self, Geometry, InternalNode, LeafNode, PageType, internal_child_for, leaf_search,
    overflow_data, page_lsn,
};

const PAGE_SIZE: usize = 512;

/// `data[0]`: bit 0 set = seal the page first (fix its checksum, so the structure checks are reached),
/// bits 1.. = the page number; `data[1..]`: the page (zero-padded or cut to 512 bytes). A page that passes
/// the checks is searched, decoded, re-encoded and decoded again; the two decodes must be equal and the
/// second encoding must equal the first byte for byte (the encoding is canonical: see `page_reencode`).
pub(crate) fn page_decode(data: &[u8]) -> Result<(), String> {
    let Some((&ctl, body)) = data.split_first() else {
        return Ok(());
    };
    let geo = Geometry {
        page_size: PAGE_SIZE,
    };
    let pgno = 2 + u32::from(ctl >> 1);
    let mut p = vec![0u8; PAGE_SIZE];
    let n = body.len().min(PAGE_SIZE);
    if let (Some(dst), Some(src)) = (p.get_mut(..n), body.get(..n)) {
        dst.copy_from_slice(src);
    }
    if ctl & 1 == 1 {
        page::seal(&mut p, pgno);
    }
    let Ok(kind) = page::check(&p, pgno, u64::MAX, &geo) else {
        return Ok(());
    };
    let probe = body.get(..body.len().min(24)).unwrap_or_default();
    let lsn = page_lsn(&p);
    match kind {
        PageType::Leaf => {
            let _ = leaf_search(&p, pgno, &geo, &mut |k| Ok(cmp_inline(k, probe)));
            let Ok(node) = LeafNode::decode(&p, pgno, &geo) else {
                return Ok(());
            };
            // Overlapping cells can decode to more bytes than a page holds; such a node cannot re-encode.
            if node.encoded_len() > PAGE_SIZE {
                return Ok(());
            }
            let again = node.encode(lsn, &geo);
            match LeafNode::decode(&again, pgno, &geo) {
                Ok(n2) if n2 == node && n2.encode(lsn, &geo) == again => Ok(()),
                Ok(n2) if n2 == node => Err("leaf page encoding is not byte-stable".into()),
                other => Err(format!("leaf re-encode differs: {other:?} vs {node:?}")),
            }
        }
        PageType::Internal => {
            let _ = internal_child_for(&p, pgno, &geo, &mut |k| Ok(cmp_inline(k, probe)));
            let Ok(node) = InternalNode::decode(&p, pgno, &geo) else {
                return Ok(());
            };
            if node.encoded_len() > PAGE_SIZE {
                return Ok(());
            }
            let again = node.encode(lsn, &geo);
            match InternalNode::decode(&again, pgno, &geo) {
                Ok(n2) if n2 == node && n2.encode(lsn, &geo) == again => Ok(()),
                Ok(n2) if n2 == node => Err("internal page encoding is not byte-stable".into()),
                other => Err(format!("internal re-encode differs: {other:?} vs {node:?}")),
            }
        }
        PageType::Overflow => match overflow_data(&p) {
            Some(d) if d.len() <= geo.overflow_capacity() => Ok(()),
            other => Err(format!(
                "checked overflow page gives {:?} bytes",
                other.map(<[u8]>::len)
            )),
        },
        PageType::Free => Ok(()),
    }
}

/// Compares by the cell's bytes only (a page alone has no overflow chains to read): a tie on an overflow
/// key's prefix counts as equal.
fn cmp_inline(k: page::KeyRef<'_>, probe: &[u8]) -> std::cmp::Ordering {
    page::prefix_cmp(k, probe).unwrap_or(std::cmp::Ordering::Equal)
}

/// The page of a [`page_decode`] input re-encoded from its decoded node and sealed, if it is a leaf or
/// an internal page that passes the checks: canonical (cells packed in slot order), so a page the writer
/// edited in place, which may hold holes, can differ from it while decoding to the same node.
#[cfg(test)]
pub(crate) fn page_reencode(data: &[u8]) -> Option<Vec<u8>> {
    let (&ctl, body) = data.split_first()?;
    let geo = Geometry {
        page_size: PAGE_SIZE,
    };
    let pgno = 2 + u32::from(ctl >> 1);
    let p = body.get(..PAGE_SIZE)?;
    let mut again = match page::check(p, pgno, u64::MAX, &geo).ok()? {
        PageType::Leaf => LeafNode::decode(p, pgno, &geo)
            .ok()?
            .encode(page_lsn(p), &geo),
        PageType::Internal => InternalNode::decode(p, pgno, &geo)
            .ok()?
            .encode(page_lsn(p), &geo),
        PageType::Overflow | PageType::Free => return None,
    };
    page::seal(&mut again, pgno);
    Some(again)
}

/// `data[..64]` and `data[64..128]` as header slots 0 and 1 (512-byte pages): the chosen slot must be a
/// valid one with the highest counter, both invalid must be `Corruption`, and a valid slot re-encodes to
/// its bytes.
pub(crate) fn header_decode(data: &[u8]) -> Result<(), String> {
    let slot = |n: usize| {
        let bytes = data.get(n * SLOT_BYTES..).unwrap_or_default();
        Header::decode(bytes, n as u32, PAGE_SIZE as u32, BTREE_FORMAT_VERSION)
    };
    for n in 0..2 {
        if let Ok(h) = slot(n) {
            let raw = data.get(n * SLOT_BYTES..(n + 1) * SLOT_BYTES);
            if raw != Some(&h.encode()[..]) {
                return Err(format!(
                    "slot {n} decodes but does not re-encode to its bytes"
                ));
            }
        }
    }
    let best = match (slot(0), slot(1)) {
        (Ok(a), Ok(b)) => Some(a.counter.max(b.counter)),
        (Ok(h), Err(_)) | (Err(_), Ok(h)) => Some(h.counter),
        (Err(_), Err(_)) => None,
    };
    match (Header::choose(slot(0), slot(1)), best) {
        (Ok(h), Some(c)) if h.counter == c => Ok(()),
        (Err(_), _) => Ok(()),
        (chosen, best) => Err(format!(
            "chose {chosen:?} where the best valid counter is {best:?}"
        )),
    }
}
