//! Reads a unary gRPC reply from a hyper HTTP/2 response without a gRPC library: the first
//! length-prefixed message, the final status, and the failure a non-OK status maps to.
//!
//! The final status comes from `grpc-status` in the trailers, or in the headers of a
//! trailers-only reply. A reply without it gets the status that the gRPC HTTP-to-status mapping
//! gives its HTTP status. A malformed reply (compressed or oversized message, a message cut short, no message
//! with an OK status) fails as the status tonic 0.14 gives it (INTERNAL, OUT_OF_RANGE or
//! UNIMPLEMENTED), so error kinds are the same as when this lane called through tonic. The
//! initial headers and the trailers are merged into one header map, which is where the
//! route header is read whichever of the two carried it.

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use prost::Message;
use tonic::Code;

use super::grpc::{CallError, TransportError};
use crate::protocol::grpc_api;
use crate::protocol::payload::ResponseCheck;
use crate::stats::{ErrorKind, Failure, Reply, ERROR_BODY_PREFIX, GRPC_STATUS};

const GRPC_MESSAGE: &str = "grpc-message";
const GRPC_STATUS_DETAILS: &str = "grpc-status-details-bin";
const GRPC_ENCODING: &str = "grpc-encoding";

/// Length of the prefix of a gRPC message: a compressed flag and a big-endian u32 length.
const PREFIX: usize = 5;

/// A gRPC status code and its message.
#[derive(Debug)]
pub struct GrpcStatus {
    pub code: Code,
    pub message: String,
}

impl GrpcStatus {
    pub fn new(code: Code, message: impl Into<String>) -> GrpcStatus {
        GrpcStatus {
            code,
            message: message.into(),
        }
    }

    /// Reads `grpc-status` and the percent-encoded `grpc-message` from `headers`, or returns
    /// None when `grpc-status` is missing. An unparsable code is UNKNOWN.
    fn from_headers(headers: &HeaderMap) -> Option<GrpcStatus> {
        let code = Code::from_bytes(headers.get(GRPC_STATUS)?.as_bytes());
        let message = headers
            .get(GRPC_MESSAGE)
            .map(|value| {
                percent_encoding::percent_decode(value.as_bytes())
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .unwrap_or_default();
        Some(GrpcStatus { code, message })
    }

    /// Maps the HTTP status of a reply without `grpc-status`, as the gRPC HTTP-to-status
    /// mapping defines. A 200 without a final status is UNKNOWN: a proxy may have cut the stream.
    fn from_http(status: StatusCode) -> GrpcStatus {
        let code = match status {
            StatusCode::BAD_REQUEST => Code::Internal,
            StatusCode::UNAUTHORIZED => Code::Unauthenticated,
            StatusCode::FORBIDDEN => Code::PermissionDenied,
            StatusCode::NOT_FOUND => Code::Unimplemented,
            StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => Code::Unavailable,
            _ => Code::Unknown,
        };
        let message = if status == StatusCode::OK {
            "the reply ended without grpc-status (a proxy may have cut the stream)".to_string()
        } else {
            format!(
                "grpc-status is missing; mapped from HTTP status {}",
                status.as_u16()
            )
        };
        GrpcStatus { code, message }
    }
}

/// Reads `response` to its end and classifies it; `check` validates the message when given.
pub async fn read_reply(
    response: http::Response<Incoming>,
    max_message: usize,
    check: Option<&ResponseCheck>,
) -> Result<Reply, CallError> {
    let (parts, mut body) = response.into_parts();
    let mut headers = parts.headers;
    if let Some(encoding) = headers.get(GRPC_ENCODING).filter(|v| *v != "identity") {
        let status = GrpcStatus::new(
            Code::Unimplemented,
            format!(
                "the reply is compressed with {:?}, and this client accepts no compression",
                String::from_utf8_lossy(encoding.as_bytes())
            ),
        );
        return Err(CallError::Failed(status_failure(status, headers)));
    }
    if let Some(status) = GrpcStatus::from_headers(&headers) {
        // A trailers-only reply: the status is in the headers and there is no message.
        let status = if status.code == Code::Ok {
            GrpcStatus::new(Code::Internal, "the reply has an OK status and no message")
        } else {
            status
        };
        return Err(CallError::Failed(status_failure(status, headers)));
    }

    let mut reader = MessageReader::new(max_message);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| CallError::from(TransportError::from_hyper(error)))?;
        match frame.into_data() {
            Ok(data) => {
                if let Err(status) = reader.push(data) {
                    return Err(CallError::Failed(status_failure(status, headers)));
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    headers.extend(trailers);
                }
            }
        }
    }
    let message = match reader.finish() {
        Ok(message) => message,
        Err(status) => return Err(CallError::Failed(status_failure(status, headers))),
    };
    let status =
        GrpcStatus::from_headers(&headers).unwrap_or_else(|| GrpcStatus::from_http(parts.status));
    if status.code != Code::Ok {
        return Err(CallError::Failed(status_failure(status, headers)));
    }
    let Some(message) = message else {
        let status = GrpcStatus::new(Code::Internal, "the reply has an OK status and no message");
        return Err(CallError::Failed(status_failure(status, headers)));
    };
    if let Some(check) = check {
        if let Err(reason) = check_response(check, message) {
            return Err(CallError::Failed(Failure {
                kind: ErrorKind::InvalidOutput,
                status: Some(200),
                headers: Some(headers),
                body: Some(reason),
            }));
        }
    }
    Ok(Reply {
        status: 200,
        headers,
        error_body: None,
    })
}

/// Collects the first message of a reply from its DATA frames. A message that arrives in one
/// frame is sliced out of it without a copy; later messages are read and dropped.
struct MessageReader {
    max_message: usize,
    pending: BytesMut,
    message: Option<Bytes>,
}

impl MessageReader {
    fn new(max_message: usize) -> MessageReader {
        MessageReader {
            max_message,
            pending: BytesMut::new(),
            message: None,
        }
    }

    fn push(&mut self, mut data: Bytes) -> Result<(), GrpcStatus> {
        if self.message.is_some() {
            return Ok(());
        }
        if self.pending.is_empty() {
            if let Some(length) = self.message_length(&data)? {
                if data.len() >= PREFIX + length {
                    data.advance(PREFIX);
                    data.truncate(length);
                    self.message = Some(data);
                    return Ok(());
                }
                self.pending.reserve(PREFIX + length);
            }
        }
        self.pending.extend_from_slice(&data);
        if let Some(length) = self.message_length(&self.pending)? {
            if self.pending.len() >= PREFIX + length {
                let mut framed = self.pending.split_to(PREFIX + length).freeze();
                framed.advance(PREFIX);
                self.message = Some(framed);
                self.pending = BytesMut::new();
            }
        }
        Ok(())
    }

    /// Returns the length of the message that `framed` starts with, once its prefix is
    /// complete; a compressed or oversized message is an error.
    fn message_length(&self, framed: &[u8]) -> Result<Option<usize>, GrpcStatus> {
        if framed.len() < PREFIX {
            return Ok(None);
        }
        match framed[0] {
            0 => {}
            1 => {
                return Err(GrpcStatus::new(
                    Code::Internal,
                    "the reply message is compressed, and no grpc-encoding was agreed",
                ))
            }
            flag => {
                return Err(GrpcStatus::new(
                    Code::Internal,
                    format!("the reply message has the invalid compressed flag {flag}"),
                ))
            }
        }
        let length = u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]]) as usize;
        if length > self.max_message {
            return Err(GrpcStatus::new(
                Code::OutOfRange,
                format!(
                    "the reply message has {length} bytes, over the {}-byte limit; raise \
                     target.grpc.max_receive_message_size",
                    self.max_message
                ),
            ));
        }
        Ok(Some(length))
    }

    /// Returns the message, or None when the reply had none; a message cut short is an error.
    fn finish(self) -> Result<Option<Bytes>, GrpcStatus> {
        if self.message.is_none() && !self.pending.is_empty() {
            return Err(GrpcStatus::new(
                Code::Internal,
                "the reply ended inside a message",
            ));
        }
        Ok(self.message)
    }
}

/// Maps a non-OK status to a failure that keeps the reply's headers and trailers, with
/// `grpc-status` set to the code so that the recorder counts it.
pub fn status_failure(status: GrpcStatus, mut headers: HeaderMap) -> Failure {
    let kind = match status.code {
        Code::Unavailable => ErrorKind::GrpcUnavailable,
        Code::ResourceExhausted => ErrorKind::GrpcResourceExhausted,
        Code::DeadlineExceeded => ErrorKind::GrpcDeadlineExceeded,
        Code::Unimplemented => ErrorKind::GrpcUnimplemented,
        Code::InvalidArgument => ErrorKind::GrpcInvalidArgument,
        Code::NotFound => ErrorKind::GrpcNotFound,
        Code::Internal => ErrorKind::GrpcInternal,
        _ => ErrorKind::GrpcOther,
    };
    // Failed calls are rare next to successes, so formatting the status text here is cheap.
    let text = format!(
        "grpc-status {} ({:?}): {}",
        status.code as i32, status.code, status.message
    );
    let body = Bytes::copy_from_slice(&text.as_bytes()[..text.len().min(ERROR_BODY_PREFIX)]);
    headers.remove(GRPC_MESSAGE);
    headers.remove(GRPC_STATUS_DETAILS);
    headers.insert(GRPC_STATUS, HeaderValue::from(status.code as i32));
    Failure {
        kind,
        status: None,
        headers: Some(headers),
        body: Some(body),
    }
}

/// Checks a response message against the expected outputs; returns the reason on a mismatch.
fn check_response(check: &ResponseCheck, message: Bytes) -> Result<(), Bytes> {
    let response = grpc_api::ModelInferResponse::decode(message)
        .map_err(|e| Bytes::from(format!("invalid ModelInferResponse: {e}")))?;
    let outputs = crate::protocol::encode::grpc_outputs(&response);
    check.check(&outputs).map_err(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
        let mut frame = vec![flag];
        frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
        frame.extend_from_slice(message);
        frame
    }

    #[test]
    fn reader_takes_message_from_one_frame() {
        let mut reader = MessageReader::new(100);
        reader.push(Bytes::from(framed(0, b"hello"))).unwrap();
        assert_eq!(reader.finish().unwrap().unwrap(), &b"hello"[..]);
    }

    #[test]
    fn reader_joins_message_split_across_frames() {
        let bytes = framed(0, b"split message");
        for cut in 1..bytes.len() {
            let mut reader = MessageReader::new(100);
            reader.push(Bytes::copy_from_slice(&bytes[..cut])).unwrap();
            reader.push(Bytes::copy_from_slice(&bytes[cut..])).unwrap();
            let message = reader.finish().unwrap();
            assert_eq!(message.unwrap(), &b"split message"[..], "cut at {cut}");
        }
    }

    #[test]
    fn reader_drops_later_messages() {
        let mut bytes = framed(0, b"first");
        bytes.extend(framed(0, b"second"));
        let mut reader = MessageReader::new(100);
        reader.push(Bytes::from(bytes)).unwrap();
        assert_eq!(reader.finish().unwrap().unwrap(), &b"first"[..]);
    }

    #[test]
    fn reader_rejects_malformed_messages() {
        let cases: [(Vec<u8>, Code); 3] = [
            (framed(1, b"zipped"), Code::Internal),
            (framed(7, b"x"), Code::Internal),
            (framed(0, &[0; 11]), Code::OutOfRange),
        ];
        for (bytes, code) in cases {
            let mut reader = MessageReader::new(10);
            let status = reader.push(Bytes::from(bytes.clone())).unwrap_err();
            assert_eq!(status.code, code, "{bytes:?}");
        }
    }

    #[test]
    fn reader_rejects_message_cut_short() {
        let bytes = framed(0, b"cut short");
        let mut reader = MessageReader::new(100);
        reader.push(Bytes::copy_from_slice(&bytes[..8])).unwrap();
        assert_eq!(reader.finish().unwrap_err().code, Code::Internal);
    }

    #[test]
    fn reader_without_data_has_no_message() {
        assert!(MessageReader::new(100).finish().unwrap().is_none());
    }

    #[test]
    fn status_read_from_headers() {
        let mut headers = HeaderMap::new();
        assert!(GrpcStatus::from_headers(&headers).is_none());
        headers.insert(GRPC_STATUS, HeaderValue::from_static("5"));
        headers.insert(
            GRPC_MESSAGE,
            HeaderValue::from_static("model%20not%20found"),
        );
        let status = GrpcStatus::from_headers(&headers).unwrap();
        assert_eq!(status.code, Code::NotFound);
        assert_eq!(status.message, "model not found");
    }

    #[test]
    fn http_statuses_map_to_codes() {
        let cases = [
            (400, Code::Internal),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (429, Code::Unavailable),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
            (200, Code::Unknown),
            (500, Code::Unknown),
        ];
        for (http, code) in cases {
            let status = GrpcStatus::from_http(StatusCode::from_u16(http).unwrap());
            assert_eq!(status.code, code, "HTTP {http}");
        }
    }
}
