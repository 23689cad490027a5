//! A scripted recorder for tests of the build's orchestration: it hands back a recording given
//! in advance and writes what the run asked of it to a journal.

use std::sync::{Arc, Mutex};

use super::{RawRecording, RecordingSession, StartRecording, TracerError};

/// Starts [`ScriptedSession`]s that end with `recording`.
#[derive(Clone, Debug, Default)]
pub struct ScriptedRecorder {
    pub recording: RawRecording,
    /// Refuse to start, as a kernel without eBPF does.
    pub refuse: bool,
    journal: Arc<Mutex<Vec<String>>>,
}

impl ScriptedRecorder {
    /// A recorder that refuses to start, as on a kernel without eBPF.
    pub fn refusing() -> Self {
        Self {
            refuse: true,
            ..Default::default()
        }
    }

    /// A recorder whose every session ends with `recording`.
    pub fn with(recording: RawRecording) -> Self {
        Self {
            recording,
            ..Default::default()
        }
    }

    /// What the runs asked: `start`, `lock N`, `in-flight N`, `hold-out on|off`, `finish`.
    pub fn journal(&self) -> Vec<String> {
        self.journal.lock().map(|j| j.clone()).unwrap_or_default()
    }
}

/// One scripted recording.
#[derive(Debug)]
pub struct ScriptedSession {
    recording: RawRecording,
    journal: Arc<Mutex<Vec<String>>>,
}

impl ScriptedSession {
    fn note(&self, line: String) {
        if let Ok(mut journal) = self.journal.lock() {
            journal.push(line);
        }
    }
}

impl StartRecording for ScriptedRecorder {
    type Session = ScriptedSession;

    fn start(&self) -> Result<ScriptedSession, TracerError> {
        if self.refuse {
            return Err(TracerError::NotPrivileged);
        }
        let session = ScriptedSession {
            recording: self.recording.clone(),
            journal: Arc::clone(&self.journal),
        };
        session.note("start".into());
        Ok(session)
    }
}

impl RecordingSession for ScriptedSession {
    fn lock_to_mntns(&mut self, mntns: u32) -> Result<(), TracerError> {
        self.note(format!("lock {mntns}"));
        Ok(())
    }

    fn note_in_flight(&mut self, mntns: u32) {
        self.note(format!("in-flight {mntns}"));
    }

    fn hold_out(&mut self, held_out: bool) -> Result<(), TracerError> {
        self.note(format!("hold-out {}", if held_out { "on" } else { "off" }));
        Ok(())
    }

    fn finish(self) -> Result<RawRecording, TracerError> {
        self.note("finish".into());
        Ok(self.recording)
    }
}
