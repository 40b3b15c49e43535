//! Blocking connections to the broker: connect, send a frame, read one answer.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;

use crate::wire;

/// The largest answer raw_load accepts; a bigger size prefix means a broken stream.
const MAX_ANSWER: usize = 1 << 30;

pub fn connect(bootstrap: &str) -> Result<TcpStream, String> {
    let stream =
        TcpStream::connect(bootstrap).map_err(|e| format!("cannot connect to {bootstrap}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    socket_buffers(&stream);
    Ok(stream)
}

/// 4 MiB socket buffers as raw_load.py asks for, so that a window of ~1 MB requests is not
/// held back by the kernel's defaults. Best effort: the kernel caps them at its maxima anyway.
#[cfg(unix)]
fn socket_buffers(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4 << 20;
    for option in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        // SAFETY: the fd is an open socket owned by `stream`, and the option value is a c_int
        // whose size is passed along.
        unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

#[cfg(not(unix))]
fn socket_buffers(_: &TcpStream) {}

pub fn send(mut stream: &TcpStream, frame: &[u8]) -> Result<(), String> {
    stream
        .write_all(frame)
        .map_err(|e| format!("sending a request: {e}"))
}

fn read_exact(mut stream: &TcpStream, buf: &mut [u8]) -> Result<(), String> {
    stream.read_exact(buf).map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof => "broker closed the connection".to_string(),
        _ => format!("reading an answer: {e}"),
    })
}

/// Reads one answer into `buf` (resized to it): everything after the size prefix, starting
/// with the correlation id.
pub fn read_answer(stream: &TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    let mut size = [0; 4];
    read_exact(stream, &mut size)?;
    let size = i32::from_be_bytes(size);
    if size < 4 || size as usize > MAX_ANSWER {
        return Err(format!("answer with a size of {size} bytes"));
    }
    buf.resize(size as usize, 0);
    read_exact(stream, buf)
}

/// Checks that an answer carries the correlation id of the request it should answer.
pub fn check_correlation(answer: &[u8], expected: i32) -> Result<(), String> {
    let got = wire::correlation(answer)?;
    if got != expected {
        return Err(format!(
            "answer has correlation id {got}, expected {expected}"
        ));
    }
    Ok(())
}

/// Sends one request and reads its answer into `buf`.
pub fn exchange(
    stream: &TcpStream,
    frame: &[u8],
    correlation_id: i32,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    send(stream, frame)?;
    read_answer(stream, buf)?;
    check_correlation(buf, correlation_id)
}
