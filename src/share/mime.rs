//! The type column: a MIME type sniffed from a file's first bytes, then its
//! extension, agreeing with `file --mime-type -b` for the common kinds.

/// How many leading bytes [`sniff`] looks at.
pub const SNIFF_LEN: usize = 4096;

/// The MIME type of a file whose content starts with `head` (at most
/// [`SNIFF_LEN`] bytes; fewer only when the file is that short).
pub fn sniff(head: &[u8], name: &str) -> &'static str {
    if head.is_empty() {
        return "inode/x-empty";
    }
    if let Some(t) = by_magic(head) {
        return t;
    }
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if looks_like_text(head) {
        return match ext.as_str() {
            "html" | "htm" if has_html_tag(head) => "text/html",
            "json" => "application/json",
            "csv" => "text/csv",
            "css" => "text/css",
            "svg" if contains(head, b"<svg") => "image/svg+xml",
            _ => "text/plain",
        };
    }
    match ext.as_str() {
        "mp3" => "audio/mpeg",
        "wav" => "audio/x-wav",
        "bin" => "application/octet-stream",
        _ => "application/octet-stream",
    }
}

fn by_magic(h: &[u8]) -> Option<&'static str> {
    const TABLE: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"PK\x05\x06", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
        (b"BZh", "application/x-bzip2"),
        (b"\xfd7zXZ\x00", "application/x-xz"),
        (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
        (b"\x28\xb5\x2f\xfd", "application/zstd"),
        (b"OggS", "audio/ogg"),
        (b"fLaC", "audio/flac"),
        (b"ID3", "audio/mpeg"),
        (b"BM", "image/bmp"),
        (b"II*\x00", "image/tiff"),
        (b"MM\x00*", "image/tiff"),
        (b"SQLite format 3\x00", "application/vnd.sqlite3"),
    ];
    if h.starts_with(b"\x7fELF") {
        return Some(elf_kind(h));
    }
    if h.len() >= 12 && &h[..4] == b"RIFF" && &h[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    if h.len() >= 12 && &h[4..8] == b"ftyp" {
        return Some("video/mp4");
    }
    if h.len() >= 262 && &h[257..262] == b"ustar" {
        return Some("application/x-tar");
    }
    TABLE
        .iter()
        .find(|(magic, _)| h.starts_with(magic))
        .map(|(_, t)| *t)
}

/// ELF files the way `file` names them: by object type, and for shared
/// objects whether they carry an interpreter (a PIE executable does).
fn elf_kind(h: &[u8]) -> &'static str {
    let little = h.get(5) == Some(&1);
    let is64 = h.get(4) == Some(&2);
    let u16_at = |off: usize| -> Option<u16> {
        let b = h.get(off..off + 2)?;
        Some(if little {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |off: usize| -> Option<u32> {
        let b = h.get(off..off + 4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(if little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    };
    let u64_at = |off: usize| -> Option<u64> {
        let b = h.get(off..off + 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(if little {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        })
    };
    match u16_at(16) {
        Some(1) => "application/x-object",
        Some(2) => "application/x-executable",
        Some(4) => "application/x-coredump",
        Some(3) => {
            // ET_DYN: a PIE executable has a PT_INTERP program header.
            let (phoff, phentsize, phnum) = if is64 {
                (
                    u64_at(32).unwrap_or(0),
                    u16_at(54).unwrap_or(0),
                    u16_at(56).unwrap_or(0),
                )
            } else {
                (
                    u64::from(u32_at(28).unwrap_or(0)),
                    u16_at(42).unwrap_or(0),
                    u16_at(44).unwrap_or(0),
                )
            };
            let has_interp = (0..u64::from(phnum)).any(|i| {
                let off = phoff.saturating_add(i.saturating_mul(u64::from(phentsize)));
                usize::try_from(off)
                    .ok()
                    .and_then(u32_at)
                    .is_some_and(|p_type| p_type == 3)
            });
            if has_interp {
                "application/x-pie-executable"
            } else {
                "application/x-sharedlib"
            }
        }
        _ => "application/octet-stream",
    }
}

/// Text as `file` sees it (libmagic's encoding checks): no byte from its
/// binary set (the C0 controls but BEL, BS, TAB, LF, VT, FF, CR and ESC,
/// and DEL), whether the rest reads as UTF-8, ISO-8859 or other extended
/// ASCII; or UTF-16 after a byte-order mark, with the same rule for its
/// ASCII characters.
fn looks_like_text(h: &[u8]) -> bool {
    let text = |c: u32| c >= 0x80 || matches!(c, 0x07..=0x0d | 0x1b | 0x20..=0x7e);
    let utf16 = |to: fn([u8; 2]) -> u16| {
        h[2..]
            .chunks_exact(2)
            .map(|p| to([p[0], p[1]]))
            .all(|u| u != 0xfffe && text(u32::from(u)))
    };
    let bom_text = match h {
        [0xff, 0xfe, ..] => utf16(u16::from_le_bytes),
        [0xfe, 0xff, ..] => utf16(u16::from_be_bytes),
        _ => false,
    };
    bom_text || h.iter().all(|&b| text(u32::from(b)))
}

fn contains(h: &[u8], needle: &[u8]) -> bool {
    h.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

fn has_html_tag(h: &[u8]) -> bool {
    contains(h, b"<html") || contains(h, b"<!doctype html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content_before_name() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b"", "x.txt", "inode/x-empty"),
            (b"hello world\n", "notes", "text/plain"),
            (b"caf\xc3\xa9\n", "x.bin", "text/plain"),
            (b"caf\xe9 au lait\n", "latin1", "text/plain"),
            (b"\x80\x81 bell\x07 vt\x0b\n", "a", "text/plain"),
            (b"\xff\xfeh\0i\0\n\0", "utf16le", "text/plain"),
            (b"\xfe\xff\0h\0i", "utf16be", "text/plain"),
            (b"\xff\xfe\x01\0", "a", "application/octet-stream"),
            (b"x\x7fy\n", "a", "application/octet-stream"),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "pic.txt", "image/png"),
            (b"\xff\xd8\xff\xe0\0\x10JFIF", "a", "image/jpeg"),
            (b"GIF89a\x01\0\x01\0", "a", "image/gif"),
            (b"%PDF-1.4\n", "a", "application/pdf"),
            (b"PK\x03\x04\x14\0", "a", "application/zip"),
            (b"\x1f\x8b\x08\0", "a", "application/gzip"),
            (b"\0\x01\x02\x03\xff", "a", "application/octet-stream"),
            (b"<html><body>hi</body></html>\n", "a.html", "text/html"),
            (b"<html><body>hi</body></html>\n", "a.txt", "text/plain"),
        ];
        for (head, name, want) in cases {
            assert_eq!(sniff(head, name), *want, "{name} {head:?}");
        }
    }

    #[test]
    fn names_elf_kinds() {
        let mut exec = vec![0u8; 64];
        exec[..4].copy_from_slice(b"\x7fELF");
        exec[4] = 2;
        exec[5] = 1;
        exec[16] = 2;
        assert_eq!(sniff(&exec, "a"), "application/x-executable");
        exec[16] = 3;
        assert_eq!(sniff(&exec, "a"), "application/x-sharedlib");
        // A truncated header never panics.
        assert_eq!(sniff(b"\x7fELF", "a"), "application/octet-stream");
    }
}
