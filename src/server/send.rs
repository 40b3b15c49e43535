//! Writing a response frame to a client's socket.
//!
//! A frame comes in parts: bytes in memory, written with vectored writes, and ranges of
//! segment files (a Fetch answer's large record sets), written with sendfile so that the
//! records go from the page cache to the socket without passing through the broker's
//! memory, as Kafka's do. The bytes written before a file part go with MSG_MORE, so the few
//! header bytes in front of a record set wait for it and share its packets instead of
//! leaving alone (the socket has TCP_NODELAY); the part that ends the frame, a sendfile or a
//! plain write, pushes everything out. (TCP_CORK did the same with two more system calls per
//! answer: cork, uncork.)
//!
//! sendfile of a range that is not in the page cache waits for the disk on this thread,
//! as Kafka's network threads do; the pread it replaces did the same.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use gregor_log::FetchSlice;
use tokio::io::{AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use crate::handlers::ResponsePart;

/// Writes one response frame through a stream that is not the socket itself (TLS): each file
/// part is read into memory (`FetchSlice::read`, one range at a time) and written like the rest.
/// (Kafka does the same on its SSL listeners: no zero-copy transfer through TLS.)
pub async fn write_response_copying<W: AsyncWrite + Unpin>(
    w: &mut W,
    parts: &[ResponsePart],
) -> io::Result<()> {
    let mut pending: Vec<Bytes> = Vec::new();
    for part in parts {
        match part {
            ResponsePart::Bytes(b) => pending.push(b.clone()),
            ResponsePart::File(range) => {
                write_parts(w, &pending).await?;
                pending.clear();
                // A read from the page cache, on this thread, as sendfile's would be.
                w.write_all(&range.read()?).await?;
            }
        }
    }
    write_parts(w, &pending).await?;
    w.flush().await
}

/// Writes one response frame: bytes parts in runs, one vectored write per run, and a
/// sendfile for each file part. A run followed by a file part goes with MSG_MORE
/// (`MoreToCome`).
pub async fn write_response(w: &mut OwnedWriteHalf, parts: &[ResponsePart]) -> io::Result<()> {
    let mut pending: Vec<Bytes> = Vec::new();
    for part in parts {
        match part {
            ResponsePart::Bytes(b) => pending.push(b.clone()),
            ResponsePart::File(range) => {
                write_parts(&mut MoreToCome(w.as_ref()), &pending).await?;
                pending.clear();
                send_file(w.as_ref(), range).await?;
            }
        }
    }
    write_parts(w, &pending).await
}

/// Writes to the socket with `sendmsg(MSG_MORE)`: the kernel holds the bytes back until a
/// write without the flag (or a full packet) comes.
struct MoreToCome<'a>(&'a TcpStream);

impl AsyncWrite for MoreToCome<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let stream = self.0;
        loop {
            std::task::ready!(stream.poll_write_ready(cx))?;
            match stream.try_io(Interest::WRITABLE, || send_more(stream.as_raw_fd(), bufs)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                done => return Poll::Ready(done),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// One `sendmsg` of `bufs` with MSG_MORE (and MSG_NOSIGNAL: a closed peer is an error, not
/// a signal).
fn send_more(socket: RawFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is ABI-compatible with iovec (std guarantees it on Unix); sendmsg only reads.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    loop {
        // SAFETY: `msg` points at `bufs`, which outlive the call.
        let n = unsafe { libc::sendmsg(socket, &msg, libc::MSG_MORE | libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Sends a file range to the socket with sendfile, waiting for room in the socket buffer.
async fn send_file(stream: &TcpStream, range: &FetchSlice) -> io::Result<()> {
    let socket = stream.as_raw_fd();
    let file = range.file.as_raw_fd();
    let mut offset = libc::off_t::try_from(range.position).map_err(io::Error::other)?;
    let end = offset
        .checked_add(range.len as libc::off_t)
        .ok_or_else(|| io::Error::other("file range past the largest offset"))?;
    while offset < end {
        let count = (end - offset) as usize;
        let sent = stream
            .async_io(Interest::WRITABLE, || loop {
                // SAFETY: both descriptors stay open while borrowed here (`stream`, and the
                // range's Arc<File>); sendfile writes only `offset`, a valid off_t.
                let n = unsafe { libc::sendfile(socket, file, &mut offset, count) };
                if n >= 0 {
                    return Ok(n as usize);
                }
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            })
            .await?;
        if sent == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "segment file shorter than the range being sent",
            ));
        }
    }
    Ok(())
}

/// Writes byte strings back to back with vectored writes, resuming after partial writes.
async fn write_parts<W: AsyncWrite + Unpin>(w: &mut W, parts: &[Bytes]) -> std::io::Result<()> {
    // Enough slices per call for a many-partition fetch answer; far below any IOV_MAX.
    const MAX_SLICES: usize = 64;
    let (mut index, mut offset) = (0, 0);
    while index < parts.len() {
        let slices: Vec<std::io::IoSlice<'_>> = std::iter::once(&parts[index][offset..])
            .chain(parts[index + 1..].iter().map(|p| &p[..]))
            .filter(|s| !s.is_empty())
            .take(MAX_SLICES)
            .map(std::io::IoSlice::new)
            .collect();
        if slices.is_empty() {
            break;
        }
        let mut written = w.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let left = parts[index].len() - offset;
            if written >= left {
                written -= left;
                index += 1;
                offset = 0;
            } else {
                offset += written;
                written = 0;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::write_parts;
    use bytes::Bytes;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A writer that takes at most `step` bytes per call, to exercise partial writes.
    struct Trickle {
        out: Vec<u8>,
        step: usize,
    }

    impl tokio::io::AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.step);
            self.out.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            let mut budget = self.step;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(budget);
                self.out.extend_from_slice(&b[..take]);
                budget -= take;
                n += take;
                if budget == 0 {
                    break;
                }
            }
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn file_ranges_and_bytes_arrive_in_order_through_a_real_socket() {
        use crate::handlers::ResponsePart;
        use gregor_log::FetchSlice;
        use std::sync::Arc;
        use tokio::io::AsyncReadExt;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.log");
        let data: Vec<u8> = (0..8_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut out = Vec::new();
            s.read_to_end(&mut out).await.unwrap();
            out
        });
        let (server, _) = listener.accept().await.unwrap();
        let (_read_half, mut w) = server.into_split();
        let range = |position: u64, len: usize| {
            ResponsePart::File(FetchSlice {
                file: file.clone(),
                position,
                len,
            })
        };
        // 5 MB is far more than a socket buffer: sendfile must wait for room and resume.
        let parts = vec![
            ResponsePart::Bytes(Bytes::from_static(b"head")),
            range(1000, 5_000_000),
            ResponsePart::Bytes(Bytes::from_static(b"mid")),
            range(0, 10),
            range(7_999_990, 10),
            ResponsePart::Bytes(Bytes::from_static(b"tail")),
        ];
        super::write_response(&mut w, &parts).await.unwrap();
        drop(w);
        let got = reader.await.unwrap();
        let mut want = b"head".to_vec();
        want.extend_from_slice(&data[1000..5_001_000]);
        want.extend_from_slice(b"mid");
        want.extend_from_slice(&data[..10]);
        want.extend_from_slice(&data[7_999_990..]);
        want.extend_from_slice(b"tail");
        assert_eq!(got.len(), want.len());
        assert!(got == want, "bytes differ");

        // A range past the end of its file fails the write instead of hanging or padding.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_read_half, mut w) = server.into_split();
        let err = super::write_response(&mut w, &[range(7_999_000, 2000)])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn parts_arrive_whole_and_in_order_through_partial_writes() {
        let parts: Vec<Bytes> = (0..100u8)
            .map(|i| Bytes::from(vec![i; (i as usize * 7) % 23]))
            .collect();
        let want: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        for step in [1, 3, 64, 1 << 20] {
            let mut w = Trickle {
                out: Vec::new(),
                step,
            };
            write_parts(&mut w, &parts).await.unwrap();
            assert_eq!(w.out, want, "step {step}");
        }
    }
}
