//! slim's own terminal, for `slim debug`: whether stdin is one, raw mode (restored when
//! dropped), the window size followed through SIGWINCH, and stdin read on a thread of its own,
//! so that a read blocked on the terminal never holds up slim's exit. Knows nothing of engines.

use std::{
    io::{IsTerminal as _, Read as _},
    mem::MaybeUninit,
};

use tokio::{
    io::{AsyncRead, AsyncWriteExt as _},
    sync::watch,
};

use crate::engine::TtySize;

/// Whether slim's stdin is a terminal.
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// The terminal in raw mode (no echo, no line editing, Ctrl-C a byte like any other: it goes
/// to the shell), as `docker run -it` sets it; the saved mode comes back when dropped.
pub struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    /// Sets stdin's terminal raw.
    pub fn enter() -> std::io::Result<Self> {
        let mut saved = MaybeUninit::<libc::termios>::uninit();
        // SAFETY: tcgetattr fills the termios it is given, or fails and leaves it unread.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, saved.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: initialised by the successful tcgetattr above.
        let saved = unsafe { saved.assume_init() };
        let mut raw = saved;
        // SAFETY: cfmakeraw only edits the flags of the termios it is given.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: a valid termios for the terminal on stdin.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: the termios tcgetattr gave for this terminal.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved) };
    }
}

/// The terminal's size, when stdin or stdout is a terminal that says.
fn size() -> Option<TtySize> {
    [libc::STDIN_FILENO, libc::STDOUT_FILENO]
        .into_iter()
        .find_map(|fd| {
            let mut size = MaybeUninit::<libc::winsize>::zeroed();
            // SAFETY: TIOCGWINSZ writes a winsize into the pointer it is given.
            let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, size.as_mut_ptr()) } == 0;
            // SAFETY: zeroed, then possibly filled by the ioctl: valid either way.
            let size = unsafe { size.assume_init() };
            (ok && size.ws_row > 0 && size.ws_col > 0).then_some(TtySize {
                rows: size.ws_row,
                cols: size.ws_col,
            })
        })
}

/// The terminal's size now and after every change (SIGWINCH), on the current runtime.
pub fn follow_size() -> Option<watch::Receiver<TtySize>> {
    let (tx, rx) = watch::channel(size()?);
    let mut changes =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok()?;
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            if let Some(size) = size() {
                if tx.send(size).is_err() {
                    return;
                }
            }
        }
    });
    Some(rx)
}

/// slim's stdin as an async reader, read on a plain thread (not the runtime's blocking pool,
/// whose shutdown would wait for a read that only the next keystroke ends); its end is the
/// reader's end.
pub fn stdin_reader() -> Box<dyn AsyncRead + Send + Unpin> {
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let runtime = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 8192];
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if runtime.block_on(writer.write_all(&buf[..n])).is_err() {
                break;
            }
        }
        let _ = runtime.block_on(writer.shutdown());
    });
    Box::new(reader)
}

/// slim's stdout or stderr as an async writer: each write is a plain blocking one (output to a
/// terminal or a pipe, a chunk at a time; a reader that stops reading holds up the shell's
/// output, as it would the shell's own).
pub struct Output<W>(pub W);

impl<W: std::io::Write + Unpin> tokio::io::AsyncWrite for Output<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(self.0.write(buf))
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(self.0.flush())
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}
