//! Frames: a 4-byte big-endian size followed by that many bytes.
//!
//! The size is checked against `socket.request.max.bytes` before any memory is reserved.
//! A frame gets its whole buffer at once only up to `FIRST_BUFFER` (1 MiB, the clients'
//! default request size limit), so that a typical Produce is read with no copy; beyond
//! that the buffer doubles as bytes actually arrive, so a client that claims 2 GiB (or 100
//! MiB and then stalls) cannot make the broker allocate it.

use bytes::BytesMut;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Kafka's default `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

/// The most a frame's buffer holds before its bytes arrive.
const FIRST_BUFFER: usize = 1024 * 1024;

#[derive(Debug, Error)]
pub enum FrameError {
    #[error("invalid frame size {0}")]
    NegativeSize(i32),
    #[error("frame size {size} is larger than socket.request.max.bytes ({max})")]
    TooLarge { size: usize, max: usize },
    #[error("connection closed in the middle of a frame ({got} of {expected} bytes)")]
    Truncated { got: usize, expected: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Frames up to this size are read together with whatever follows them (pipelined
/// requests then arrive several to a read); larger ones get a buffer of their own.
const READ_AHEAD: usize = 16 * 1024;

/// Reads frames from one connection.
///
/// Each frame is read with as few copies as the kernel allows: a large one (a Produce)
/// straight into a buffer of its own, small ones into a shared read-ahead buffer that they
/// are split off without copying. Between requests the reader holds no buffer at all, so an
/// idle connection costs no read memory.
pub struct FrameReader<R> {
    source: R,
    max_size: usize,
    /// Bytes read past the end of the last frame: the start of the next ones.
    ahead: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(source: R, max_size: usize) -> Self {
        FrameReader {
            source,
            max_size,
            ahead: BytesMut::new(),
        }
    }

    /// Reads one frame. `Ok(None)` means the peer closed the connection between frames.
    pub async fn read_frame(&mut self) -> Result<Option<BytesMut>, FrameError> {
        let Some(size) = self.read_size().await? else {
            return Ok(None);
        };
        if self.ahead.len() >= size {
            return Ok(Some(self.ahead.split_to(size)));
        }
        if size <= READ_AHEAD {
            while self.ahead.len() < size {
                if self.ahead.capacity() - self.ahead.len() < size - self.ahead.len() {
                    self.ahead.reserve(READ_AHEAD);
                }
                if self.source.read_buf(&mut self.ahead).await? == 0 {
                    return Err(FrameError::Truncated {
                        got: self.ahead.len(),
                        expected: size,
                    });
                }
            }
            return Ok(Some(self.ahead.split_to(size)));
        }
        // A large frame: what was read ahead of it is its start, the rest goes straight in.
        let mut frame = BytesMut::with_capacity(size.min(FIRST_BUFFER));
        frame.extend_from_slice(&self.ahead.split());
        while frame.len() < size {
            if frame.capacity() == frame.len() {
                // At most doubles: never more than twice what has arrived.
                frame.reserve((size - frame.len()).min(frame.len()));
            }
            let want = (size - frame.len()).min(frame.capacity() - frame.len());
            let n = (&mut self.source)
                .take(want as u64)
                .read_buf(&mut frame)
                .await?;
            if n == 0 {
                return Err(FrameError::Truncated {
                    got: frame.len(),
                    expected: size,
                });
            }
        }
        Ok(Some(frame))
    }

    /// The next frame's size, checked. When no byte of it was read ahead, the read-ahead
    /// buffer is let go first and the size is read on its own: this is where an idle
    /// connection waits.
    async fn read_size(&mut self) -> Result<Option<usize>, FrameError> {
        let mut size_buf = [0u8; 4];
        let mut got = self.ahead.len().min(4);
        size_buf[..got].copy_from_slice(&self.ahead.split_to(got));
        if self.ahead.is_empty() {
            self.ahead = BytesMut::new();
        }
        while got < 4 {
            let n = self.source.read(&mut size_buf[got..]).await?;
            if n == 0 {
                return if got == 0 {
                    Ok(None)
                } else {
                    Err(FrameError::Truncated { got, expected: 4 })
                };
            }
            got += n;
        }
        let size = i32::from_be_bytes(size_buf);
        if size < 0 {
            return Err(FrameError::NegativeSize(size));
        }
        let size = size as usize;
        if size > self.max_size {
            return Err(FrameError::TooLarge {
                size,
                max: self.max_size,
            });
        }
        Ok(Some(size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8], max: usize) -> Result<Option<BytesMut>, FrameError> {
        FrameReader::new(bytes, max).read_frame().await
    }

    #[tokio::test]
    async fn reads_whole_frames_back_to_back() {
        let mut data = Vec::new();
        for body in [&b"abc"[..], b"", b"0123456789"] {
            data.extend_from_slice(&(body.len() as i32).to_be_bytes());
            data.extend_from_slice(body);
        }
        let mut r = FrameReader::new(&data[..], 100);
        assert_eq!(&r.read_frame().await.unwrap().unwrap()[..], b"abc");
        assert_eq!(&r.read_frame().await.unwrap().unwrap()[..], b"");
        assert_eq!(&r.read_frame().await.unwrap().unwrap()[..], b"0123456789");
        assert!(r.read_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn refuses_negative_and_oversized_sizes_without_reading_on() {
        assert!(matches!(
            read(&(-1i32).to_be_bytes(), 100).await,
            Err(FrameError::NegativeSize(-1))
        ));
        let claim = (i32::MAX).to_be_bytes();
        assert!(matches!(
            read(&claim, DEFAULT_MAX_REQUEST_BYTES).await,
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn reports_truncation() {
        let mut data = 10i32.to_be_bytes().to_vec();
        data.extend_from_slice(b"abc");
        assert!(matches!(
            read(&data, 100).await,
            Err(FrameError::Truncated {
                got: 3,
                expected: 10
            })
        ));
        assert!(matches!(
            read(&[0, 0], 100).await,
            Err(FrameError::Truncated {
                got: 2,
                expected: 4
            })
        ));
    }

    #[tokio::test]
    async fn large_frame_arrives_whole() {
        let body = vec![7u8; 3 * FIRST_BUFFER + 11];
        let mut data = (body.len() as i32).to_be_bytes().to_vec();
        data.extend_from_slice(&body);
        assert_eq!(
            read(&data, DEFAULT_MAX_REQUEST_BYTES)
                .await
                .unwrap()
                .unwrap()
                .len(),
            body.len()
        );
    }

    /// A reader that hands out at most `step` bytes per read.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let n = self.data.len().min(self.step).min(buf.remaining());
            buf.put_slice(&self.data[..n]);
            self.data = &self.data[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn small_and_large_frames_back_to_back_arrive_exact_through_any_read_sizes() {
        let bodies: Vec<Vec<u8>> = [
            0usize,
            3,
            READ_AHEAD - 1,
            READ_AHEAD,
            READ_AHEAD + 1,
            5,
            700_000,
            2_500_000,
            17,
        ]
        .iter()
        .enumerate()
        .map(|(i, &len)| (0..len).map(|j| (i * 31 + j) as u8).collect())
        .collect();
        let mut data = Vec::new();
        for b in &bodies {
            data.extend_from_slice(&(b.len() as i32).to_be_bytes());
            data.extend_from_slice(b);
        }
        for step in [1, 2, 5, 4096, READ_AHEAD + 3, 1 << 20] {
            let mut r = FrameReader::new(Trickle { data: &data, step }, DEFAULT_MAX_REQUEST_BYTES);
            for (i, b) in bodies.iter().enumerate() {
                let frame = r.read_frame().await.unwrap().unwrap();
                assert!(frame[..] == b[..], "step {step}, frame {i}");
            }
            assert!(r.read_frame().await.unwrap().is_none(), "step {step}");
            assert_eq!(r.ahead.capacity(), 0, "no buffer held between requests");
        }
    }
}
