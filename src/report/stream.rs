//! Result files written while the run goes: each is written under a hidden temporary name in the
//! run folder and renamed to its final name when the run ends, interrupted or not, so a reader
//! never mistakes a half-written file for a finished one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file being streamed to `.NAME.partial` and renamed to `NAME` by [`StreamFile::commit`].
pub struct StreamFile {
    temporary: PathBuf,
    path: PathBuf,
    writer: BufWriter<File>,
}

impl StreamFile {
    /// Creates `.NAME.partial` in `dir`.
    pub fn create(dir: &Path, name: &str) -> std::io::Result<StreamFile> {
        let temporary = dir.join(format!(".{name}.partial"));
        let file = File::create(&temporary)?;
        Ok(StreamFile {
            temporary,
            path: dir.join(name),
            writer: BufWriter::new(file),
        })
    }

    pub fn writer(&mut self) -> &mut BufWriter<File> {
        &mut self.writer
    }

    /// Flushes and syncs the file, then renames it to its final name.
    pub fn commit(mut self) -> std::io::Result<PathBuf> {
        self.writer.flush()?;
        self.writer.get_ref().sync_all()?;
        std::fs::rename(&self.temporary, &self.path)?;
        Ok(self.path)
    }
}
