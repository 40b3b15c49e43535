//! Frames: a 4-byte big-endian size followed by that many bytes.
//!
//! The size is checked against `socket.request.max.bytes` before any memory is reserved,
//! and the buffer grows only as bytes actually arrive, so a client that claims 2 GiB (or
//! 100 MiB and then stalls) cannot make the broker allocate it.

use bytes::BytesMut;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Kafka's default `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

/// How much we reserve at a time while a large frame streams in.
const GROWTH_STEP: usize = 256 * 1024;

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

/// Reads one frame. `Ok(None)` means the peer closed the connection between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_size: usize,
) -> Result<Option<BytesMut>, FrameError> {
    let mut size_buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = reader.read(&mut size_buf[got..]).await?;
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
    if size > max_size {
        return Err(FrameError::TooLarge {
            size,
            max: max_size,
        });
    }
    let mut buf = BytesMut::with_capacity(size.min(GROWTH_STEP));
    while buf.len() < size {
        if buf.capacity() == buf.len() {
            buf.reserve((size - buf.len()).min(GROWTH_STEP));
        }
        let want = (size - buf.len()).min(buf.capacity() - buf.len());
        let n = (&mut *reader).take(want as u64).read_buf(&mut buf).await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                got: buf.len(),
                expected: size,
            });
        }
    }
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8], max: usize) -> Result<Option<BytesMut>, FrameError> {
        let mut r = bytes;
        read_frame(&mut r, max).await
    }

    #[tokio::test]
    async fn reads_whole_frames_back_to_back() {
        let mut data = Vec::new();
        for body in [&b"abc"[..], b"", b"0123456789"] {
            data.extend_from_slice(&(body.len() as i32).to_be_bytes());
            data.extend_from_slice(body);
        }
        let mut r = &data[..];
        assert_eq!(&read_frame(&mut r, 100).await.unwrap().unwrap()[..], b"abc");
        assert_eq!(&read_frame(&mut r, 100).await.unwrap().unwrap()[..], b"");
        assert_eq!(
            &read_frame(&mut r, 100).await.unwrap().unwrap()[..],
            b"0123456789"
        );
        assert!(read_frame(&mut r, 100).await.unwrap().is_none());
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
        let body = vec![7u8; 3 * GROWTH_STEP + 11];
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
}
