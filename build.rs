//! Embeds the shipped config tree (`config/`) into the binary, so banhammer runs with no
//! files on disk. Generates `$OUT_DIR/embedded_config.rs`: a sorted table of
//! (relative path, contents) pairs, each contents an `include_str!` of the real file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, root, out)?;
        } else if path.extension().is_some_and(|e| e == "conf") {
            let rel = path
                .strip_prefix(root)
                .map_err(std::io::Error::other)?
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, path.canonicalize()?));
        }
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let root = Path::new("config");
    println!("cargo:rerun-if-changed=config");
    let mut files = Vec::new();
    if root.is_dir() {
        collect(root, root, &mut files)?;
    }
    files.sort();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").map_err(std::io::Error::other)?);
    let mut f = fs::File::create(out_dir.join("embedded_config.rs"))?;
    writeln!(
        f,
        "/// The shipped config tree: (relative path, contents), sorted by path."
    )?;
    writeln!(f, "pub static EMBEDDED_CONFIG: &[(&str, &str)] = &[")?;
    for (rel, path) in &files {
        // Directories are watched above; each file too, so edits re-embed.
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            f,
            "    ({rel:?}, include_str!({:?})),",
            path.display().to_string()
        )?;
    }
    writeln!(f, "];")?;
    Ok(())
}
