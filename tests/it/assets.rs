//! The widget and the pages over HTTP as a browser and a customer's site fetch them:
//! brotli or gzip as `Accept-Encoding` allows (decoding to the same bytes as identity),
//! a strong `ETag` per representation, `304` for a client that holds it, `Vary`, and the
//! widget cached for a few minutes while the inbox's files are revalidated each time.

use std::io::Read;

use crate::support::http::{get, get_with, Response};
use crate::support::TestServer;

fn header<'a>(r: &'a Response, name: &str) -> &'a str {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name} header in {:?}", r.head))
}

#[tokio::test]
async fn every_asset_is_served_compressed_as_accepted_and_decodes_to_the_same_bytes() {
    let s = TestServer::start().await;
    for path in [
        "/",
        "/widget.js",
        "/widget.css",
        "/inbox",
        "/inbox.js",
        "/inbox.css",
    ] {
        let plain = get(s.addr, path).await;
        assert_eq!(plain.status, 200, "{path}");
        assert_eq!(plain.header("content-encoding"), None, "{path}");
        assert_eq!(header(&plain, "vary"), "Accept-Encoding");

        let br = get_with(s.addr, path, &[("Accept-Encoding", "gzip, deflate, br")]).await;
        assert_eq!(header(&br, "content-encoding"), "br", "{path}");
        let mut unbrotli = Vec::new();
        brotli::BrotliDecompress(&mut &br.bytes[..], &mut unbrotli).expect("brotli");
        assert_eq!(unbrotli, plain.bytes, "{path}");
        assert!(br.bytes.len() * 2 < plain.bytes.len(), "{path}: compressed");

        let gz = get_with(s.addr, path, &[("Accept-Encoding", "gzip")]).await;
        assert_eq!(header(&gz, "content-encoding"), "gzip", "{path}");
        let mut gunzipped = Vec::new();
        flate2::read::GzDecoder::new(&gz.bytes[..])
            .read_to_end(&mut gunzipped)
            .expect("gzip");
        assert_eq!(gunzipped, plain.bytes, "{path}");

        let refused = get_with(s.addr, path, &[("Accept-Encoding", "br;q=0, gzip;q=0")]).await;
        assert_eq!(refused.header("content-encoding"), None, "{path}");

        let tags = [&plain, &gz, &br].map(|r| header(r, "etag").to_string());
        assert!(tags.iter().all(|t| t.starts_with('"') && t.ends_with('"')));
        assert!(tags[0] != tags[1] && tags[1] != tags[2], "{path}: {tags:?}");
    }
}

#[tokio::test]
async fn a_client_holding_the_representation_gets_304_and_another_gets_the_body() {
    let s = TestServer::start().await;
    let br = [("Accept-Encoding", "br")];
    let first = get_with(s.addr, "/widget.js", &br).await;
    let tag = header(&first, "etag").to_string();
    let again = get_with(s.addr, "/widget.js", &[br[0], ("If-None-Match", &tag)]).await;
    assert_eq!(again.status, 304);
    assert!(again.bytes.is_empty(), "no body with a 304");
    assert_eq!(header(&again, "etag"), tag);
    assert_eq!(header(&again, "cache-control"), "public, max-age=300");
    // A list of tags, weak or not, naming it.
    let listed = format!("\"other\", W/{tag}");
    let listed = get_with(s.addr, "/widget.js", &[br[0], ("If-None-Match", &listed)]).await;
    assert_eq!(listed.status, 304);
    // The same tag for another coding is another representation: the full body.
    let gz = get_with(
        s.addr,
        "/widget.js",
        &[("Accept-Encoding", "gzip"), ("If-None-Match", &tag)],
    )
    .await;
    assert_eq!((gz.status, header(&gz, "content-encoding")), (200, "gzip"));
    // A stale or garbage tag: the full body.
    for stale in ["\"0123\"", "nonsense", ""] {
        let r = get_with(s.addr, "/widget.js", &[br[0], ("If-None-Match", stale)]).await;
        assert_eq!(r.status, 200, "{stale:?}");
    }
    // The inbox's files are revalidated every time; its page keeps its policy on a 304.
    let inbox = get(s.addr, "/inbox").await;
    assert_eq!(header(&inbox, "cache-control"), "no-cache");
    let tag = header(&inbox, "etag").to_string();
    let inbox = get_with(s.addr, "/inbox", &[("If-None-Match", &tag)]).await;
    assert_eq!(inbox.status, 304);
    assert!(header(&inbox, "content-security-policy").contains("frame-ancestors 'none'"));
}

/// The widget is what every page view of a customer's site pays for: its script and its
/// stylesheet together stay under 20 KiB gzipped.
#[tokio::test]
async fn the_widget_and_its_stylesheet_stay_under_20_kib_gzipped() {
    let s = TestServer::start().await;
    let mut total = 0;
    for path in ["/widget.js", "/widget.css"] {
        let gz = get_with(s.addr, path, &[("Accept-Encoding", "gzip")]).await;
        assert_eq!(gz.status, 200, "{path}");
        assert_eq!(
            header(&gz, "cache-control"),
            "public, max-age=300",
            "{path}"
        );
        total += gz.bytes.len();
    }
    assert!(
        total < 20 * 1024,
        "widget.js + widget.css: {total} bytes gzipped"
    );
}
