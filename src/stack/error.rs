//! Errors located in the stack file: `file:line:column: message`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_spanned::Spanned;
use thiserror::Error;

/// A stack file error, located in the file.
#[derive(Debug, Error)]
pub struct StackError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

impl StackError {
    /// The file could not be read at all: no position to give.
    pub(super) fn unreadable(path: &Path, e: std::io::Error) -> Self {
        StackError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the stack file: {e}"),
        }
    }
}

/// The text being parsed and the name it goes by in messages: what turns a
/// byte offset into a located [`StackError`].
pub(super) struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl<'a> Source<'a> {
    pub(super) fn new(path: &'a Path, text: &'a str) -> Self {
        Source { path, text }
    }

    /// An error at byte `offset` of the file.
    pub(super) fn at(&self, offset: usize, message: impl Into<String>) -> StackError {
        let (line, column) = line_col(self.text, offset);
        StackError {
            file: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    /// The name the file goes by in messages.
    pub(super) fn path(&self) -> &Path {
        self.path
    }

    /// The text being parsed.
    pub(super) fn source_text(&self) -> &str {
        self.text
    }

    /// An error at the start of a value as written.
    pub(super) fn at_value<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> StackError {
        self.at(value.span().start, message)
    }
}

/// 1-based line and column of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map(|i| before[i + 1..].chars().count())
        .unwrap_or_else(|| before.chars().count())
        + 1;
    (line, col)
}
