//! Finding saved reports on disk: a `report.json`, a report directory, a suite's
//! directory (its `latest`, or its newest report) or a directory of suites.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::report::Report;

/// Why a path could not be read as reports: one line, naming the file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {what}", path.display())]
pub struct LoadError {
    pub path: PathBuf,
    pub what: String,
}

fn load_error(path: &Path, what: impl Into<String>) -> LoadError {
    LoadError {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> LoadError {
    let what = match e.kind() {
        std::io::ErrorKind::NotFound => "does not exist".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    load_error(path, what)
}

/// Reports found at a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// One report: a `report.json`, a report directory, or a suite directory's newest.
    One(PathBuf, Box<Report>),
    /// A directory of suite directories (a `--report-dir`), each's newest report, by
    /// suite name.
    Many(BTreeMap<String, (PathBuf, Report)>),
}

/// Read one `report.json`, with the `timeline.json` beside it when there is one (reports
/// saved before timelines were recorded have none).
pub fn read_report(path: &Path) -> Result<Report, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, &e))?;
    let mut report: Report = serde_json::from_str(&text)
        .map_err(|e| load_error(path, format!("not a goneaway report: {e}")))?;
    let beside = path.with_file_name(crate::report::timeline::FILE);
    if beside.is_file() {
        let text = std::fs::read_to_string(&beside).map_err(|e| io_error(&beside, &e))?;
        report.timeline = Some(
            serde_json::from_str(&text)
                .map_err(|e| load_error(&beside, format!("not a goneaway timeline: {e}")))?,
        );
    }
    Ok(report)
}

/// Find the reports at `path`: a `report.json` file; a directory holding one; a suite's
/// directory (its `latest`, or else its newest report directory); or a directory of such
/// suite directories.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, &e))?;
    if !meta.is_dir() {
        return Ok(Loaded::One(
            path.to_path_buf(),
            Box::new(read_report(path)?),
        ));
    }
    if let Some(file) = newest_in_suite_dir(path)? {
        let report = read_report(&file)?;
        return Ok(Loaded::One(file, Box::new(report)));
    }
    let mut many = BTreeMap::new();
    for sub in subdirs(path)? {
        if let Some(file) = newest_in_suite_dir(&sub)? {
            let report = read_report(&file)?;
            many.entry(report.stable.suite.clone())
                .or_insert((file, report));
        }
    }
    if many.is_empty() {
        return Err(load_error(
            path,
            "no report.json, `latest` link or suite directories with reports in it",
        ));
    }
    Ok(Loaded::Many(many))
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_error(dir, &e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    Ok(out)
}

/// The report a directory stands for when it is a report directory or a suite's
/// directory; `None` when it is neither.
fn newest_in_suite_dir(dir: &Path) -> Result<Option<PathBuf>, LoadError> {
    let direct = dir.join("report.json");
    if direct.exists() {
        return Ok(Some(direct));
    }
    let latest = dir.join("latest");
    if latest.symlink_metadata().is_ok() {
        if !latest.exists() {
            let target = std::fs::read_link(&latest)
                .map(|t| format!(" (points at {})", t.display()))
                .unwrap_or_default();
            return Err(load_error(&latest, format!("broken link{target}")));
        }
        return Ok(Some(latest.join("report.json")));
    }
    // A suite directory without `latest`: its newest report (names start with the time).
    Ok(subdirs(dir)?
        .into_iter()
        .map(|d| d.join("report.json"))
        .rfind(|f| f.is_file()))
}
