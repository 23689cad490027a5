//! Finding (or mounting) tracefs and reading tracepoint record layouts from its `format` files.
//!
//! Field offsets of tracepoint records change between kernel versions; the recorder reads the
//! running kernel's instead of trusting compiled-in ones.

use std::{
    ffi::CString,
    fs,
    path::{Path, PathBuf},
};

use slim_common::TracepointFields;

use super::TracerError;

const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// The tracefs root, mounting tracefs at `/sys/kernel/tracing` when no instance is visible.
pub fn ensure_mounted() -> Result<PathBuf, TracerError> {
    for dir in [TRACEFS, DEBUGFS_TRACING] {
        if Path::new(dir).join("events").is_dir() {
            return Ok(PathBuf::from(dir));
        }
    }
    let source = CString::new("nodev").expect("no NUL");
    let target = CString::new(TRACEFS).expect("no NUL");
    let fstype = CString::new("tracefs").expect("no NUL");
    // SAFETY: all pointers are valid NUL-terminated strings; data may be null.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 && Path::new(TRACEFS).join("events").is_dir() {
        tracing::info!("mounted tracefs at {TRACEFS}");
        return Ok(PathBuf::from(TRACEFS));
    }
    Err(TracerError::NoTracefs {
        source: std::io::Error::last_os_error(),
    })
}

/// Offset of `field` in the record of tracepoint `category/name`, from its format file.
fn field_offset(root: &Path, category: &str, name: &str, field: &str) -> Result<u32, TracerError> {
    let path = root.join("events").join(category).join(name).join("format");
    let text = fs::read_to_string(&path).map_err(|source| TracerError::Tracepoint {
        tracepoint: format!("{category}:{name}"),
        source,
    })?;
    parse_field_offset(&text, field).ok_or_else(|| TracerError::TracepointField {
        tracepoint: format!("{category}:{name}"),
        field: field.to_owned(),
    })
}

/// Finds `offset:N;` on the line declaring `field` (`field:TYPE NAME[...];`).
pub fn parse_field_offset(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let decl = line.trim().strip_prefix("field:")?;
        let decl = decl.split(';').next()?;
        let name = decl.rsplit([' ', '*']).next()?;
        let name = name.split('[').next()?;
        if name != field {
            return None;
        }
        let offset = line.split("offset:").nth(1)?.split(';').next()?;
        offset.trim().parse().ok()
    })
}

/// The record layouts of the tracepoints the recorder uses, on the running kernel.
pub fn read_fields(root: &Path) -> Result<TracepointFields, TracerError> {
    Ok(TracepointFields {
        exec_filename: field_offset(root, "sched", "sched_process_exec", "filename")?,
        fork_parent_pid: field_offset(root, "sched", "sched_process_fork", "parent_pid")?,
        fork_child_pid: field_offset(root, "sched", "sched_process_fork", "child_pid")?,
        _pad: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORK: &str = "name: sched_process_fork
ID: 312
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;
\tfield:pid_t parent_pid;\toffset:12;\tsize:4;\tsigned:1;
\tfield:__data_loc char[] child_comm;\toffset:16;\tsize:4;\tsigned:0;
\tfield:pid_t child_pid;\toffset:20;\tsize:4;\tsigned:1;
";

    #[test]
    fn finds_fields_by_exact_name() {
        assert_eq!(parse_field_offset(FORK, "parent_pid"), Some(12));
        assert_eq!(parse_field_offset(FORK, "child_pid"), Some(20));
        assert_eq!(parse_field_offset(FORK, "child_comm"), Some(16));
        assert_eq!(parse_field_offset(FORK, "pid"), None);
    }

    #[test]
    fn handles_arrays() {
        let enter = "\tfield:long id;\toffset:8;\tsize:8;\tsigned:1;\n\tfield:unsigned long args[6];\toffset:16;\tsize:48;\tsigned:0;\n";
        assert_eq!(parse_field_offset(enter, "args"), Some(16));
        assert_eq!(parse_field_offset(enter, "id"), Some(8));
    }
}
