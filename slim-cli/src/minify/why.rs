//! Why one path is kept, with the data that says so: what the app did with it, which program
//! needs it, which source file imports it. files.txt shows it through [`Display`]; rules that
//! need to know why something was kept match the enum, never its text.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use serde::{Serialize, Serializer};

use crate::recording::Use;

/// Why a path is kept, in detail (its coarse category is [`super::Reason`]). Paths are absolute
/// paths in the image, as shown to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// The app used it (`read,stat x3`): how, and how many times.
    Touched { uses: Vec<Use>, count: u64 },
    /// The directory of a path the app created at run time.
    ParentOfCreated { path: PathBuf },
    /// A symlink on the way to `target`.
    OnTheWayTo { target: PathBuf },
    /// A symlink on the way to a library of `binary`.
    OnTheWayToLibraryOf { binary: PathBuf },
    /// A shared library `by` loads (its `DT_NEEDED` closure).
    NeededBy { by: PathBuf },
    /// The ELF interpreter (`PT_INTERP`) of a kept executable.
    InterpreterOf { of: PathBuf },
    /// An NSS module or resolver library glibc loads for `program`'s name lookups.
    NssOf { program: PathBuf },
    /// What a kept source file's imports lead to (the static import closure).
    Imported { how: Import, by: PathBuf },
    /// A PHP class file Composer's autoloader loads for `by`.
    AutoloadedFor { by: PathBuf, class: String },
    /// The `package.json` Node reads to know whether `file` is an ES module.
    PackageScopeOf { file: PathBuf },
    /// The compiled form (`.pyc`) of a kept Python source.
    CompiledFormOf { source: PathBuf },
    /// In a tree the app owns (its working or program directory).
    InAppTree { root: PathBuf },
    /// In a language package of which the app uses a file.
    InPackage { root: PathBuf },
    /// In a tree the app keeps state in: the programs that wrote there (none known: the app).
    StateWrittenBy { writers: Vec<String> },
    /// Asked for by a command-line flag (`--include-path`), with its value when it names a
    /// program (`--include-exe curl`).
    Flag {
        flag: &'static str,
        value: Option<String>,
    },
    /// A fixed rule, said in words (`CA bundle`, `a volume mount point`).
    Rule(&'static str),
}

/// The kind of statement that imports a file, as each language says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Import {
    /// Python's and Node's `import`/`require`.
    Imported,
    /// Perl's `use`/`require`.
    Loaded,
    /// Ruby's `require`/`require_relative`.
    Required,
    /// PHP's `include`/`require`.
    Included,
}

impl Import {
    fn verb(self) -> &'static str {
        match self {
            Self::Imported => "imported",
            Self::Loaded => "loaded",
            Self::Required => "required",
            Self::Included => "included",
        }
    }
}

impl Why {
    /// A symlink on the way to the tree path (relative) `target`.
    pub fn on_the_way_to_tree_path(target: &Path) -> Self {
        Self::OnTheWayTo {
            target: Path::new("/").join(target),
        }
    }

    /// Imported by the source file at tree path (relative) `file`.
    pub fn imported(how: Import, file: &Path) -> Self {
        Self::Imported {
            how,
            by: Path::new("/").join(file),
        }
    }

    /// A flag without a value.
    pub fn flag(flag: &'static str) -> Self {
        Self::Flag { flag, value: None }
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Touched { uses, count } => {
                for (i, u) in uses.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(u.as_str())?;
                }
                write!(f, " x{count}")
            }
            Self::ParentOfCreated { path } => {
                write!(f, "parent of {}, created at run time", path.display())
            }
            Self::OnTheWayTo { target } => write!(f, "on the way to {}", target.display()),
            Self::OnTheWayToLibraryOf { binary } => {
                write!(f, "on the way to a library of {}", binary.display())
            }
            Self::NeededBy { by } => write!(f, "needed by {}", by.display()),
            Self::InterpreterOf { of } => write!(f, "interpreter of {}", of.display()),
            Self::NssOf { program } => write!(f, "needed by {} (glibc NSS)", program.display()),
            Self::Imported { how, by } => {
                write!(f, "{} by {} (static)", how.verb(), by.display())
            }
            Self::AutoloadedFor { by, class } => {
                write!(f, "autoloaded for {} (static): {class}", by.display())
            }
            Self::PackageScopeOf { file } => write!(f, "package scope of {}", file.display()),
            Self::CompiledFormOf { source } => {
                write!(f, "compiled form of {}", source.display())
            }
            Self::InAppTree { root } => write!(f, "in the app's tree {}", root.display()),
            Self::InPackage { root } => write!(f, "in the package {}", root.display()),
            Self::StateWrittenBy { writers } => {
                if writers.is_empty() {
                    f.write_str("written by the app: kept whole")
                } else {
                    write!(f, "written by {}: kept whole", writers.join(", "))
                }
            }
            Self::Flag { flag, value: None } => f.write_str(flag),
            Self::Flag {
                flag,
                value: Some(value),
            } => write!(f, "{flag} {value}"),
            Self::Rule(words) => f.write_str(words),
        }
    }
}

impl Serialize for Why {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_reads_as_files_txt_has_always_said_it() {
        let p = PathBuf::from;
        for (why, text) in [
            (
                Why::Touched {
                    uses: vec![Use::Read, Use::Stat],
                    count: 3,
                },
                "read,stat x3",
            ),
            (
                Why::ParentOfCreated {
                    path: p("/var/run/app.pid"),
                },
                "parent of /var/run/app.pid, created at run time",
            ),
            (
                Why::on_the_way_to_tree_path(Path::new("usr/lib/x.so")),
                "on the way to /usr/lib/x.so",
            ),
            (
                Why::OnTheWayToLibraryOf {
                    binary: p("/usr/bin/python3.11"),
                },
                "on the way to a library of /usr/bin/python3.11",
            ),
            (
                Why::NeededBy {
                    by: p("/usr/bin/python3.11"),
                },
                "needed by /usr/bin/python3.11",
            ),
            (
                Why::InterpreterOf {
                    of: p("/usr/bin/app"),
                },
                "interpreter of /usr/bin/app",
            ),
            (
                Why::NssOf {
                    program: p("/usr/bin/app"),
                },
                "needed by /usr/bin/app (glibc NSS)",
            ),
            (
                Why::imported(Import::Imported, Path::new("app/main.py")),
                "imported by /app/main.py (static)",
            ),
            (
                Why::imported(Import::Loaded, Path::new("app/x.pl")),
                "loaded by /app/x.pl (static)",
            ),
            (
                Why::imported(Import::Required, Path::new("app/x.rb")),
                "required by /app/x.rb (static)",
            ),
            (
                Why::imported(Import::Included, Path::new("var/www/index.php")),
                "included by /var/www/index.php (static)",
            ),
            (
                Why::AutoloadedFor {
                    by: p("/srv/index.php"),
                    class: "App\\Report".into(),
                },
                "autoloaded for /srv/index.php (static): App\\Report",
            ),
            (
                Why::PackageScopeOf {
                    file: p("/srv/a.js"),
                },
                "package scope of /srv/a.js",
            ),
            (
                Why::CompiledFormOf {
                    source: p("/app/a.py"),
                },
                "compiled form of /app/a.py",
            ),
            (Why::InAppTree { root: p("/app") }, "in the app's tree /app"),
            (
                Why::InPackage {
                    root: p("/srv/node_modules/mime"),
                },
                "in the package /srv/node_modules/mime",
            ),
            (
                Why::StateWrittenBy {
                    writers: vec!["postgres".into()],
                },
                "written by postgres: kept whole",
            ),
            (
                Why::StateWrittenBy { writers: vec![] },
                "written by the app: kept whole",
            ),
            (Why::flag("--include-path"), "--include-path"),
            (
                Why::Flag {
                    flag: "--include-exe",
                    value: Some("curl".into()),
                },
                "--include-exe curl",
            ),
            (Why::Rule("CA bundle"), "CA bundle"),
        ] {
            assert_eq!(why.to_string(), text);
        }
    }
}
