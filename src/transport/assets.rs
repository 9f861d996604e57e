//! The widget and the pages, compiled into the binary.

pub struct Asset {
    pub body: &'static str,
    pub content_type: &'static str,
}

pub fn get(path: &str) -> Option<Asset> {
    let (body, content_type) = match path {
        "/" => (
            include_str!("../assets/demo.html"),
            "text/html; charset=utf-8",
        ),
        "/widget.js" => (
            include_str!("../assets/widget.js"),
            "text/javascript; charset=utf-8",
        ),
        "/inbox" => (
            include_str!("../assets/inbox.html"),
            "text/html; charset=utf-8",
        ),
        "/inbox.js" => (
            include_str!("../assets/inbox.js"),
            "text/javascript; charset=utf-8",
        ),
        "/inbox.css" => (
            include_str!("../assets/inbox.css"),
            "text/css; charset=utf-8",
        ),
        _ => return None,
    };
    Some(Asset { body, content_type })
}
