//! Writes the seed table (`src/seeds.rs`) to `corpus/<target>/seed-*`, removing `seed-*` files
//! no longer in the table. Inputs the fuzzer found and kept (`scripts/fuzz --keep`) are left.
//! Run by `scripts/fuzz-seeds`.

use std::collections::BTreeSet;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let seeds = mailmux_fuzz::seeds::all();
    for target in mailmux_fuzz::seeds::TARGETS {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        let wanted: BTreeSet<&str> = seeds.iter().filter(|s| s.target == target).map(|s| s.file.as_str()).collect();
        for entry in std::fs::read_dir(&dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.starts_with("seed-") && !wanted.contains(name.as_str()) {
                std::fs::remove_file(dir.join(&name))?;
                println!("removed {target}/{name}");
            }
        }
    }
    let mut written = 0;
    for s in &seeds {
        let path = corpus.join(s.target).join(&s.file);
        if std::fs::read(&path).ok().as_deref() != Some(&s.data[..]) {
            std::fs::write(&path, &s.data)?;
            written += 1;
        }
    }
    println!("{} seeds, {written} written, in {}", seeds.len(), corpus.display());
    Ok(())
}
