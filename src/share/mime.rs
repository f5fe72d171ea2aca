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

/// Every type [`sniff`] can give, so that the index keeps a type as one
/// byte: its place in this list plus one ([`code`], [`by_code`]).
pub const TYPES: [&str; 36] = [
    "inode/x-empty",
    "application/octet-stream",
    "text/plain",
    "text/html",
    "application/json",
    "text/csv",
    "text/css",
    "image/svg+xml",
    "audio/mpeg",
    "audio/x-wav",
    "image/png",
    "image/jpeg",
    "image/gif",
    "application/pdf",
    "application/zip",
    "application/gzip",
    "application/x-bzip2",
    "application/x-xz",
    "application/x-7z-compressed",
    "application/zstd",
    "audio/ogg",
    "audio/flac",
    "image/bmp",
    "image/tiff",
    "application/vnd.sqlite3",
    "image/webp",
    "video/mp4",
    "application/x-tar",
    "application/x-object",
    "application/x-executable",
    "application/x-coredump",
    "application/x-pie-executable",
    "application/x-sharedlib",
    // Guessed from a name alone (see [`guess`]).
    "image/x-icon",
    "text/markdown",
    "application/javascript",
];

/// The one-byte code of a type from [`TYPES`]; 0 (not read yet) for any
/// other string.
pub fn code(t: &str) -> u8 {
    TYPES
        .iter()
        .position(|k| *k == t)
        .map_or(0, |i| i as u8 + 1)
}

/// The type a [`code`] stands for; None for 0 (not read yet) or a code
/// no type has.
pub fn by_code(c: u8) -> Option<&'static str> {
    TYPES.get(usize::from(c).checked_sub(1)?).copied()
}

/// The type of a file not read yet, from its size and name alone: an
/// empty file is `inode/x-empty` (nothing to read), else the type its
/// extension names, else `application/octet-stream`. Reading the file
/// ([`sniff`]) may say otherwise.
pub fn guess(name: &str, size: u64) -> &'static str {
    if size == 0 {
        return "inode/x-empty";
    }
    let base = name.rsplit('/').next().unwrap_or(name);
    let Some((_, ext)) = base.rsplit_once('.') else {
        return "application/octet-stream";
    };
    let mut lower = [0u8; 8];
    let e = ext.as_bytes();
    if e.len() > lower.len() {
        return "application/octet-stream";
    }
    for (l, b) in lower.iter_mut().zip(e) {
        *l = b.to_ascii_lowercase();
    }
    match &lower[..e.len()] {
        b"txt" | b"text" | b"log" | b"c" | b"h" | b"rs" | b"py" | b"sh" | b"toml" | b"yaml"
        | b"yml" | b"ini" | b"conf" | b"xml" => "text/plain",
        b"md" => "text/markdown",
        b"html" | b"htm" => "text/html",
        b"json" => "application/json",
        b"csv" => "text/csv",
        b"css" => "text/css",
        b"js" => "application/javascript",
        b"svg" => "image/svg+xml",
        b"png" => "image/png",
        b"jpg" | b"jpeg" => "image/jpeg",
        b"gif" => "image/gif",
        b"bmp" => "image/bmp",
        b"tif" | b"tiff" => "image/tiff",
        b"webp" => "image/webp",
        b"ico" => "image/x-icon",
        b"pdf" => "application/pdf",
        b"zip" => "application/zip",
        b"gz" | b"tgz" => "application/gzip",
        b"bz2" => "application/x-bzip2",
        b"xz" => "application/x-xz",
        b"7z" => "application/x-7z-compressed",
        b"zst" => "application/zstd",
        b"tar" => "application/x-tar",
        b"mp3" => "audio/mpeg",
        b"wav" => "audio/x-wav",
        b"ogg" => "audio/ogg",
        b"flac" => "audio/flac",
        b"mp4" | b"m4v" => "video/mp4",
        b"sqlite" | b"db" => "application/vnd.sqlite3",
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
    fn every_type_sniff_or_guess_gives_has_a_code() {
        let mut heads: Vec<Vec<u8>> = vec![b"".to_vec(), b"hi\n".to_vec(), vec![0, 1, 2, 0xff]];
        for (magic, _) in [
            (&b"\x89PNG\r\n\x1a\n"[..], 0),
            (b"\xff\xd8\xff", 0),
            (b"GIF89a", 0),
            (b"%PDF-", 0),
            (b"PK\x03\x04", 0),
            (b"\x1f\x8b", 0),
            (b"BZh", 0),
            (b"\xfd7zXZ\x00", 0),
            (b"7z\xbc\xaf\x27\x1c", 0),
            (b"\x28\xb5\x2f\xfd", 0),
            (b"OggS", 0),
            (b"fLaC", 0),
            (b"ID3", 0),
            (b"BM", 0),
            (b"II*\x00", 0),
            (b"SQLite format 3\x00", 0),
            (b"RIFF\0\0\0\0WEBP", 0),
            (b"\0\0\0\0ftypisom", 0),
        ] {
            heads.push(magic.to_vec());
        }
        let mut tar = vec![0u8; 300];
        tar[257..262].copy_from_slice(b"ustar");
        heads.push(tar);
        for kind in [1u8, 2, 3, 4] {
            let mut elf = vec![0u8; 64];
            elf[..4].copy_from_slice(b"\x7fELF");
            elf[4] = 2;
            elf[5] = 1;
            elf[16] = kind;
            heads.push(elf);
        }
        let names = [
            "a",
            "a.html",
            "a.json",
            "a.csv",
            "a.css",
            "a.svg",
            "a.mp3",
            "a.wav",
            "a.bin",
            "a.md",
            "a.ico",
            "a.js",
            "a.PNG",
            "a.tar",
            "x/y.jpeg",
            "a.verylongextension",
        ];
        for name in names {
            let t = guess(name, 1);
            assert_eq!(by_code(code(t)), Some(t), "{name}");
            for head in &heads {
                let t = sniff(head, name);
                assert_eq!(by_code(code(t)), Some(t), "{name} {head:?}");
            }
        }
        let svg = sniff(b"<svg xmlns=''></svg>", "a.svg");
        assert_eq!(by_code(code(svg)), Some(svg));
        let html = sniff(b"<html></html>", "a.html");
        assert_eq!(by_code(code(html)), Some(html));
        assert_eq!(guess("empty.png", 0), "inode/x-empty");
        assert_eq!(guess("a.PNG", 9), "image/png");
        assert_eq!(guess("notes", 9), "application/octet-stream");
        assert_eq!(code("no/such-type"), 0);
        assert_eq!(by_code(0), None);
        assert_eq!(by_code(200), None);
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
