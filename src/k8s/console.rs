//! KubeVirt's serial console through the API server (`virtualmachineinstances/{name}/console`, served by
//! virt-api behind the aggregator): a websocket with the `plain.kubevirt.io` subprotocol, one binary
//! channel carrying the serial port's bytes. kube's own `connect` only speaks the `*.channel.k8s.io`
//! protocols, so the upgrade is made here over the same client (same credentials, same TLS). The socket is
//! handed over as a byte stream both ways, so the witness reads it like any other probe channel.

use super::K8sError;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::{Message, Role};
use tokio_tungstenite::WebSocketStream;

pub const PROTOCOL: &str = "plain.kubevirt.io";

/// Opens the console at `path` (e.g. `/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/vm0/console`).
/// Returns (what the guest writes, what to send it). The stream ends when the socket closes.
pub async fn connect(
    client: &kube::Client,
    path: &str,
) -> Result<(impl AsyncRead + Send + Unpin + 'static, impl AsyncWrite + Send + Unpin + 'static), K8sError> {
    let key = tokio_tungstenite::tungstenite::handshake::client::generate_key();
    let req = http::Request::get(path)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "websocket")
        .header(http::header::SEC_WEBSOCKET_VERSION, "13")
        .header(http::header::SEC_WEBSOCKET_KEY, &key)
        .header(http::header::SEC_WEBSOCKET_PROTOCOL, PROTOCOL)
        .body(kube::client::Body::empty())
        .map_err(|e| K8sError::Usage(format!("failed to build the console request for {path}: {e}")))?;
    let fail = |what: String| K8sError::Usage(format!("failed to open the serial console {path}: {what}"));
    let res = client.send(req).await.map_err(|e| fail(e.to_string()))?;
    if res.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        let status = res.status();
        let body = http_body_util_text(res).await;
        return Err(fail(format!("{status}: {}", body.trim())));
    }
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    if res.headers().get(http::header::SEC_WEBSOCKET_ACCEPT).and_then(|v| v.to_str().ok()) != Some(accept.as_str()) {
        return Err(fail("the server's websocket accept key does not match".into()));
    }
    let proto = res.headers().get(http::header::SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()).unwrap_or("");
    if proto != PROTOCOL {
        return Err(fail(format!("the server answered subprotocol {proto:?}, not {PROTOCOL}")));
    }
    let upgraded = hyper::upgrade::on(res).await.map_err(|e| fail(e.to_string()))?;
    let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    let (mut sink, mut stream) = ws.split();
    // guest -> harness: every frame's bytes, in order, into a pipe; its end is the socket's end
    let (mut to_reader, reader) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        while let Some(Ok(m)) = stream.next().await {
            let bytes = match m {
                Message::Binary(b) => b.to_vec(),
                Message::Text(t) => t.as_bytes().to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            if to_reader.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to_reader.shutdown().await;
    });
    // harness -> guest: whatever is written, as binary frames
    let (writer, mut from_writer) = tokio::io::duplex(1 << 12);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            match from_writer.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sink.close().await;
    });
    Ok((reader, writer))
}

/// The body of a refused request, as text (a `Status` or a plain message), at most 64 KiB.
async fn http_body_util_text(res: http::Response<kube::client::Body>) -> String {
    let mut body = res.into_body();
    let mut out = Vec::new();
    use hyper::body::Body as _;
    while let Some(Ok(frame)) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(d) = frame.into_data() {
            out.extend_from_slice(&d);
        }
        if out.len() > 1 << 16 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v["message"].as_str().map(String::from)).unwrap_or(text)
}
