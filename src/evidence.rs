//! `drbot evidence export` (SPEC §12): one archive an auditor can take away — for a
//! period, each incident's and drill's timeline (md, json, html), the whole audit log, the
//! review report (html, md, json), the checkpoints, the chain's verification, and a
//! manifest with each file's SHA-256. A plain POSIX tar (ustar), readable by any `tar`.

use sha2::{Digest, Sha256};

/// One file of the archive.
pub struct File {
    pub name: String,
    pub content: Vec<u8>,
}

impl File {
    pub fn new(name: impl Into<String>, content: impl Into<Vec<u8>>) -> File {
        File {
            name: name.into(),
            content: content.into(),
        }
    }
}

/// `MANIFEST.txt`: each file's SHA-256 and size, as `sha256sum -c` reads it.
pub fn manifest(files: &[File], header: &str) -> File {
    let mut text = String::new();
    for line in header.lines() {
        text.push_str(&format!("# {line}\n"));
    }
    for f in files {
        text.push_str(&format!(
            "{}  {}\n",
            hex::encode(Sha256::digest(&f.content)),
            f.name
        ));
    }
    File::new("MANIFEST.txt", text)
}

/// The files as a ustar archive, each under `root/`, dated `mtime` (seconds).
pub fn tar(root: &str, files: &[File], mtime: i64) -> Vec<u8> {
    let mut out = Vec::new();
    for f in files {
        let name = format!("{root}/{}", f.name);
        let mut header = [0u8; 512];
        let (prefix, base) = split_name(&name);
        header[..base.len()].copy_from_slice(base.as_bytes());
        octal(&mut header[100..108], 0o644);
        octal(&mut header[108..116], 0);
        octal(&mut header[116..124], 0);
        octal(&mut header[124..136], f.content.len() as u64);
        octal(&mut header[136..148], mtime.max(0) as u64);
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
        // The checksum is computed with its own field as spaces.
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|b| *b as u32).sum();
        let field = format!("{sum:06o}\0 ");
        header[148..156].copy_from_slice(field.as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&f.content);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// ustar keeps names up to 100 bytes, with a prefix of up to 155 for longer paths.
fn split_name(name: &str) -> (&str, &str) {
    if name.len() <= 100 {
        return ("", name);
    }
    let mut cut = name.len() - 100;
    while cut < name.len() && name.as_bytes()[cut] != b'/' {
        cut += 1;
    }
    let prefix = &name[..cut.min(name.len())];
    let base = name.get(cut + 1..).unwrap_or("");
    if prefix.len() > 155 || base.is_empty() || base.len() > 100 {
        // Names drbot makes are short; a longer one is cut, never written past its field.
        return ("", &name[name.len() - 100..]);
    }
    (prefix, base)
}

fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(&text.as_bytes()[text.len() - field.len()..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_is_read_back_by_tar() {
        let files = vec![
            File::new("report.md", "# DR review\n"),
            File::new(format!("timelines/{}.json", "x".repeat(90)), "{}"),
        ];
        let bytes = tar("evidence", &files, 1_764_220_000);
        assert_eq!(bytes.len() % 512, 0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.tar");
        std::fs::write(&path, bytes).unwrap();
        let out = std::process::Command::new("tar")
            .args(["-tf"])
            .arg(&path)
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(listed.contains("evidence/report.md"), "{listed}");
        assert!(
            listed.contains(&format!("evidence/timelines/{}.json", "x".repeat(90))),
            "{listed}"
        );
    }
}
