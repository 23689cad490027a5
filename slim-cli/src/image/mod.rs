//! Image bytes <-> file trees, with no engine and no unpacking: reading what an engine saves
//! (docker-archive or OCI layout, compressed or not), flattening layers into one indexed tree,
//! writing a single-layer image from a chosen set of paths, per-layer analysis (xray), and the
//! comparison of two images (diff).
//!
//! Layers are untrusted input: names are sanitized (no `..`, no absolute paths), links are
//! stored and never followed, hard links must point at entries that exist, sizes must fit.

pub mod archive;
pub mod config;
pub mod diff;
pub mod flatten;
pub mod overlay;
pub mod platform;
pub mod reference;
pub mod tree;
pub mod writer;
pub mod xray;

#[cfg(test)]
pub(crate) mod testutil;

/// Why an image could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{what} failed")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed image: {0}")]
    Malformed(String),
    #[error("unsafe entry `{path}` in the image: {why}")]
    Unsafe { path: String, why: &'static str },
    #[error("layer {layer}")]
    InLayer {
        layer: usize,
        #[source]
        source: Box<ImageError>,
    },
    #[error("unsupported image: {0}")]
    Unsupported(String),
}

impl ImageError {
    /// Says which layer the error is about.
    pub fn in_layer(self, layer: usize) -> Self {
        Self::InLayer {
            layer,
            source: Box::new(self),
        }
    }

    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    /// The kind of the I/O error at the bottom, if it is one.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            Self::Io { source, .. } => Some(source.kind()),
            Self::InLayer { source, .. } => source.io_kind(),
            _ => None,
        }
    }
}

/// For writers that must hand back an `io::Error`: the I/O error's kind is kept (a full disk
/// stays `StorageFull`), and so is the image error, as the inner error.
impl From<ImageError> for std::io::Error {
    fn from(err: ImageError) -> Self {
        let kind = err.io_kind().unwrap_or(std::io::ErrorKind::InvalidData);
        std::io::Error::new(kind, err)
    }
}
