//! What the exporter serves: one table row per endpoint, and the request handler around it.
//!
//! A row maps a path to a content type and a render function over the [`Monitor`]; the index page is
//! generated from the table, so a new row is all a new endpoint needs, for example
//! `Route::page("/stats.json", JSON, Monitor::render_stats_json, "counters as JSON")`.
//!
//! The handler is a plain function from a request to a response (no I/O), checked in this order:
//! authentication (401), method (405 unless GET or HEAD), path (404), then rendering, with gzip when the
//! client accepts it. Slow pages ([`Render::Slow`], the flamegraphs) are not rendered here: `answer`
//! says which one is asked for, and the server gets it from its render thread (`renderer.rs`) without
//! blocking the event loop. `HEAD` of a slow page renders nothing.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Body;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::auth;
use super::negotiate::{self, Exposition};
use super::renderer::Rendered;
use crate::config::http::HttpConfig;
use crate::monitor::Monitor;
use crate::profiler::NothingToDraw;
use crate::render::protobuf::PROTOBUF_CONTENT_TYPE;
use crate::render::text::Format;

/// Content type of the index page.
pub const HTML: &str = "text/html; charset=utf-8";
/// Content type of JSON endpoints.
pub const JSON: &str = "application/json";
/// Content type of SVG endpoints.
pub const SVG: &str = "image/svg+xml";
/// Content type of plain-text endpoints (folded stacks).
pub const PLAIN: &str = "text/plain; charset=utf-8";

/// How a route renders its body.
#[derive(Clone, Copy)]
pub enum Render {
    /// The Prometheus exposition: text 0.0.4, or OpenMetrics 1.0.0 when `Accept` prefers it.
    Exposition,
    /// One representation with a fixed content type.
    Page {
        /// The `Content-Type` header.
        content_type: &'static str,
        /// Renders the body from the monitor.
        render: fn(&Monitor) -> String,
    },
    /// A page too slow to render on the event loop (tenths of a second): rendered on the exporter's
    /// render thread, one render at a time, and shared by every request for two seconds.
    Slow {
        /// The `Content-Type` header.
        content_type: &'static str,
        /// Renders the body from the monitor.
        render: fn(&Monitor) -> String,
    },
}

/// One endpoint.
#[derive(Clone, Copy)]
pub struct Route {
    /// The exact path served (query strings are ignored).
    pub path: &'static str,
    /// What is served there.
    pub render: Render,
    /// One line for the index page.
    pub about: &'static str,
}

impl Route {
    /// An endpoint with a fixed content type.
    pub const fn page(
        path: &'static str,
        content_type: &'static str,
        render: fn(&Monitor) -> String,
        about: &'static str,
    ) -> Self {
        Self {
            path,
            render: Render::Page { content_type, render },
            about,
        }
    }

    /// An endpoint too slow for the event loop ([`Render::Slow`]).
    pub const fn slow_page(
        path: &'static str,
        content_type: &'static str,
        render: fn(&Monitor) -> String,
        about: &'static str,
    ) -> Self {
        Self {
            path,
            render: Render::Slow { content_type, render },
            about,
        }
    }

    /// The negotiated Prometheus exposition.
    pub const fn exposition(path: &'static str, about: &'static str) -> Self {
        Self {
            path,
            render: Render::Exposition,
            about,
        }
    }
}

/// Every endpoint, in index-page order, each with the line the index page says about it.
pub const ROUTES: &[Route] = &[
    Route::page("/", HTML, index, "this index of the endpoints"),
    Route::exposition(
        "/metrics",
        "Prometheus metrics: operations by type and result, latency histograms and quantiles, hit rates by window \
         and key pattern, in flight, size, alerts (text format 0.0.4, or OpenMetrics 1.0.0 when Accept asks for it)",
    ),
    Route::page(
        "/hit-rate.json",
        JSON,
        Monitor::render_hit_rate_json,
        "hit rates as JSON: overall, over the last minute, 5 minutes, hour and day, by operation and by key pattern",
    ),
    Route::page(
        "/stats.json",
        JSON,
        Monitor::render_stats_json,
        "live statistics as JSON: operations in flight and per second, latency quantiles by operation, gauges, alerts",
    ),
    Route::slow_page(
        "/flamegraph.svg",
        SVG,
        flamegraph_svg,
        "where operations come from: an interactive flamegraph of the sampled call stacks (click a frame to zoom)",
    ),
    Route::slow_page(
        "/flamegraph.folded",
        PLAIN,
        flamegraph_folded,
        "the same sampled stacks as folded text (frame;frame;frame weight), for flamegraph.pl, inferno or speedscope",
    ),
];

/// The folded stacks, exactly as the monitor renders them; with none, comment lines saying why and how to
/// turn sampling on.
///
/// Folded stacks are read by tools, so the library's own render (`Monitor::render_flamegraph_folded`,
/// `cache_monitor_render_flamegraph_folded`) stays empty when nothing was sampled. This route is also
/// what a person opens from the index page, and an empty page explains nothing, so it says why in lines
/// that start with `# ` and end without a number: inferno's folded reader drops lines that start with
/// `# `, and `flamegraph.pl` skips lines without a trailing count. Neither would draw anything from an
/// empty body either, so the comment changes nothing for them; once a stack is sampled the body is the
/// render alone.
fn flamegraph_folded(monitor: &Monitor) -> String {
    let folded = monitor.render_flamegraph_folded();
    if !folded.is_empty() {
        return folded;
    }
    // Samples imported from an earlier copy of the library are not counted here: with none of its own,
    // this copy says it has sampled nothing, which is so.
    let why = NothingToDraw::given(&monitor.config().profiler, monitor.profiler_stats().samples);
    let mut comment = String::new();
    for line in why.lines() {
        comment.push_str("# ");
        comment.push_str(&line);
        comment.push('\n');
    }
    comment.push_str("# Sampled stacks show here as folded lines: frame;frame;frame weight\n");
    comment
}

/// The SVG flamegraph, or an SVG saying why it could not be drawn.
fn flamegraph_svg(monitor: &Monitor) -> String {
    monitor.render_flamegraph_svg().unwrap_or_else(|error| {
        let mut reason = String::new();
        push_html_escaped(&mut reason, &error.to_string());
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"40\"><text x=\"10\" y=\"25\">{reason}</text></svg>\n"
        )
    })
}

/// Requests served on one connection before the response asks the client to reconnect.
pub(crate) const MAX_REQUESTS_PER_CONNECTION: u64 = 1000;

/// The route at `path`, if any.
pub fn route(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|route| route.path == path)
}

/// The render functions of the slow routes, in table order: a slow page's index in this list is how
/// [`Answer::Slow`] names it.
pub(crate) fn slow_pages() -> Vec<fn(&Monitor) -> String> {
    ROUTES
        .iter()
        .filter_map(|route| match route.render {
            Render::Slow { render, .. } => Some(render),
            _ => None,
        })
        .collect()
}

/// The index of the slow route at `path` among [`slow_pages`].
fn slow_page_index(path: &str) -> Option<usize> {
    ROUTES
        .iter()
        .filter(|route| matches!(route.render, Render::Slow { .. }))
        .position(|route| route.path == path)
}

/// The index page: a link to every route with its line, and whether the flamegraphs sample.
fn index(monitor: &Monitor) -> String {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cache-monitor</title></head>\n<body>\n\
         <h1>cache-monitor</h1>\n",
    );
    let config = monitor.config();
    page.push_str("<p>Metric namespace <code>");
    push_html_escaped(&mut page, &config.namespace);
    page.push_str("</code>. ");
    match config.profiler.sample_every {
        0 => {
            page.push_str("Sampling is off, so the flamegraphs are empty: turn it on with <code>");
            push_html_escaped(&mut page, r#"{"profiler": {"sample_every": 100}}"#);
            page.push_str("</code>.");
        }
        1 => page.push_str("The flamegraphs sample every record."),
        every => page.push_str(&format!("The flamegraphs sample 1 record in {every} on each thread.")),
    }
    page.push_str("</p>\n<ul>\n");
    for route in ROUTES {
        page.push_str("<li><a href=\"");
        push_html_escaped(&mut page, route.path);
        page.push_str("\">");
        push_html_escaped(&mut page, route.path);
        page.push_str("</a>: ");
        push_html_escaped(&mut page, route.about);
        page.push_str("</li>\n");
    }
    page.push_str("</ul>\n</body></html>\n");
    page
}

fn push_html_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// A response before it becomes HTTP: status, content type, body, and extra headers.
pub(crate) struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
    /// The body gzip-compressed, when it was compressed ahead (shared renders); otherwise it is
    /// compressed when the client accepts gzip.
    gzip: Option<Bytes>,
    /// A `HEAD` answered without rendering: no body, no `Content-Length`, no compression.
    head_only: bool,
    headers: Vec<(header::HeaderName, &'static str)>,
}

impl Reply {
    fn plain(status: StatusCode, body: &'static str) -> Self {
        Self {
            status,
            content_type: PLAIN,
            body: Bytes::from_static(body.as_bytes()),
            gzip: None,
            head_only: false,
            headers: Vec::new(),
        }
    }

    /// A slow page's reply from its shared render (`None`: the exporter is stopping, or the render
    /// failed).
    pub(crate) fn rendered(content_type: &'static str, rendered: Option<&Rendered>) -> Self {
        match rendered {
            Some(rendered) => Self {
                status: StatusCode::OK,
                content_type,
                body: rendered.body.clone(),
                gzip: rendered.gzip.clone(),
                head_only: false,
                headers: vec![(header::VARY, "Accept-Encoding")],
            },
            None => Self::plain(StatusCode::SERVICE_UNAVAILABLE, "cannot render this page now\n"),
        }
    }
}

/// What a request asks for: a reply made at once, or a slow page to get from the render thread.
pub(crate) enum Answer {
    /// Everything is known: send it.
    Reply(Reply),
    /// The slow page at this index of [`slow_pages`], whose reply comes from [`Reply::rendered`].
    Slow {
        /// Index in [`slow_pages`].
        page: usize,
        /// Its `Content-Type`.
        content_type: &'static str,
    },
}

/// Answers one request, rendering slow pages too (on the calling thread). `served_before` is how many
/// requests this connection already had.
#[cfg(test)]
pub(crate) fn respond<B: Body>(
    monitor: &Monitor,
    http: &HttpConfig,
    request: &Request<B>,
    served_before: u64,
) -> Response<Full<Bytes>> {
    let reply = match answer(monitor, http, request) {
        Answer::Reply(reply) => reply,
        Answer::Slow { content_type, .. } => {
            let render = match route(request.uri().path()).map(|route| route.render) {
                Some(Render::Slow { render, .. }) => render,
                _ => unreachable!("only slow routes are answered as slow"),
            };
            let mut reply = Reply::plain(StatusCode::OK, "");
            reply.content_type = content_type;
            reply.body = Bytes::from(render(monitor));
            reply.headers.push((header::VARY, "Accept-Encoding"));
            reply
        }
    };
    finish(reply, request, served_before)
}

/// Turns `reply` into the response to `request`: gzip when accepted, the common headers, and whether the
/// connection closes. `served_before` is how many requests this connection already had.
pub(crate) fn finish<B: Body>(reply: Reply, request: &Request<B>, served_before: u64) -> Response<Full<Bytes>> {
    let gzip = reply.status == StatusCode::OK
        && !reply.head_only
        && negotiate::accepts_gzip(text(request.headers(), header::ACCEPT_ENCODING));
    let compressed = match (gzip, reply.gzip) {
        (false, _) => None,
        (true, Some(ahead)) => Some(ahead),
        (true, None) => negotiate::gzip(&reply.body).ok().map(Bytes::from),
    };
    let encoded = compressed.is_some();
    let mut response = Response::new(Full::new(compressed.unwrap_or(reply.body)));
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    if encoded {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    for (name, value) in reply.headers {
        headers.append(name, HeaderValue::from_static(value));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // A request body is never read, so close rather than have hyper skip over it; and keep-alive is
    // limited to MAX_REQUESTS_PER_CONNECTION requests.
    if !request.body().is_end_stream() || served_before + 1 >= MAX_REQUESTS_PER_CONNECTION {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// What `request` gets: an error, a page rendered now, or a slow page (only named: see [`Answer::Slow`]).
pub(crate) fn answer<B>(monitor: &Monitor, http: &HttpConfig, request: &Request<B>) -> Answer {
    let headers = request.headers();
    let authorization = headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
    if !auth::authorized(http, authorization) {
        let mut reply = Reply::plain(StatusCode::UNAUTHORIZED, "authentication required\n");
        for challenge in auth::challenges(http) {
            reply.headers.push((header::WWW_AUTHENTICATE, challenge));
        }
        return Answer::Reply(reply);
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut reply = Reply::plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        reply.headers.push((header::ALLOW, "GET, HEAD"));
        return Answer::Reply(reply);
    }
    let Some(route) = route(request.uri().path()) else {
        return Answer::Reply(Reply::plain(
            StatusCode::NOT_FOUND,
            "not found: see / for the endpoints\n",
        ));
    };
    let (content_type, body, vary) = match route.render {
        Render::Slow { content_type, .. } if request.method() == Method::HEAD => {
            // The headers of a slow page are known without rendering it.
            let mut reply = Reply::plain(StatusCode::OK, "");
            reply.content_type = content_type;
            reply.head_only = true;
            reply.headers.push((header::VARY, "Accept-Encoding"));
            return Answer::Reply(reply);
        }
        Render::Slow { content_type, .. } => {
            let page = slow_page_index(route.path).unwrap_or_else(|| unreachable!("a slow route has an index"));
            return Answer::Slow { page, content_type };
        }
        Render::Exposition => match negotiate::exposition(text(headers, header::ACCEPT)) {
            Exposition::Text(format) => {
                let body = match format {
                    Format::Text => monitor.render_prometheus(),
                    Format::OpenMetrics => monitor.render_openmetrics(),
                };
                (format.content_type(), body.into_bytes(), "Accept, Accept-Encoding")
            }
            Exposition::Protobuf => (
                PROTOBUF_CONTENT_TYPE,
                monitor.render_protobuf(),
                "Accept, Accept-Encoding",
            ),
        },
        Render::Page { content_type, render } => (content_type, render(monitor).into_bytes(), "Accept-Encoding"),
    };
    Answer::Reply(Reply {
        status: StatusCode::OK,
        content_type,
        body: Bytes::from(body),
        gzip: None,
        head_only: false,
        headers: vec![(header::VARY, vary)],
    })
}

fn text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use http_body_util::{BodyExt, Empty};

    use super::*;
    use crate::config::Section;
    use crate::config::http::HttpPatch;
    use crate::recording::operation::{Operation, Outcome};

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<Empty<Bytes>> {
        let mut builder = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Empty::new()).unwrap()
    }

    fn body(response: Response<Full<Bytes>>) -> Vec<u8> {
        let collected = std::pin::pin!(response.into_body().collect());
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match collected.poll(&mut context) {
            std::task::Poll::Ready(Ok(collected)) => collected.to_bytes().to_vec(),
            _ => unreachable!("a Full body is ready at once"),
        }
    }

    fn monitor() -> Monitor {
        let monitor = Monitor::new();
        monitor.record(Operation::GET, Outcome::Hit, 1_000, b"user:1").unwrap();
        monitor
    }

    #[test]
    fn metrics_are_negotiated_between_text_and_openmetrics() {
        let monitor = monitor();
        let http = HttpConfig::default();
        let text = respond(&monitor, &http, &request("GET", "/metrics", &[]), 0);
        assert_eq!(text.status(), StatusCode::OK);
        assert_eq!(text.headers()[header::CONTENT_TYPE], Format::Text.content_type());
        assert_eq!(body(text), monitor.render_prometheus().into_bytes());

        let accept = [("accept", "application/openmetrics-text; version=1.0.0")];
        let open = respond(&monitor, &http, &request("GET", "/metrics?x=1", &accept), 0);
        assert_eq!(open.headers()[header::CONTENT_TYPE], Format::OpenMetrics.content_type());
        assert!(body(open).ends_with(b"# EOF\n"));

        let accept = [(
            "accept",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,text/plain;q=0.5",
        )];
        let protobuf = respond(&monitor, &http, &request("GET", "/metrics", &accept), 0);
        assert_eq!(protobuf.headers()[header::CONTENT_TYPE], PROTOBUF_CONTENT_TYPE);
        assert_eq!(protobuf.headers()[header::VARY], "Accept, Accept-Encoding");
        let families = crate::render::protobuf::decode(&body(protobuf)).unwrap();
        assert_eq!(families[0].name.as_deref(), Some("cuenv_cache_operations_total"));
    }

    #[test]
    fn gzip_only_when_accepted() {
        let monitor = monitor();
        let http = HttpConfig::default();
        let gz = respond(
            &monitor,
            &http,
            &request("GET", "/metrics", &[("accept-encoding", "gzip")]),
            0,
        );
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(body(gz).as_slice())
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, monitor.render_prometheus());

        let missing = respond(
            &monitor,
            &http,
            &request("GET", "/nope", &[("accept-encoding", "gzip")]),
            0,
        );
        assert!(missing.headers().get(header::CONTENT_ENCODING).is_none());
    }

    #[test]
    fn statuses_for_auth_method_and_path() {
        let monitor = monitor();
        let open = HttpConfig::default();
        let status = |http: &HttpConfig, method: &str, path: &str, headers: &[(&str, &str)]| {
            respond(&monitor, http, &request(method, path, headers), 0).status()
        };
        assert_eq!(status(&open, "GET", "/", &[]), StatusCode::OK);
        assert_eq!(status(&open, "HEAD", "/metrics", &[]), StatusCode::OK);
        assert_eq!(status(&open, "GET", "/metricz", &[]), StatusCode::NOT_FOUND);
        assert_eq!(status(&open, "POST", "/metrics", &[]), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(status(&open, "DELETE", "/nope", &[]), StatusCode::METHOD_NOT_ALLOWED);

        let patch: HttpPatch = serde_json::from_str(r#"{"bearer_token": "t"}"#).unwrap();
        let locked = HttpConfig::default().apply(patch).unwrap();
        let denied = respond(&monitor, &locked, &request("GET", "/metrics", &[]), 0);
        assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
        assert!(
            denied.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        assert!(
            !body(denied).windows(10).any(|w| w == b"cuenv_cache"),
            "no metrics without auth"
        );
        assert_eq!(
            status(&locked, "POST", "/nope", &[]),
            StatusCode::UNAUTHORIZED,
            "nothing about the server is revealed before authentication"
        );
        assert_eq!(
            status(&locked, "GET", "/metrics", &[("authorization", "Bearer t")]),
            StatusCode::OK
        );
    }

    #[test]
    fn slow_pages_are_named_not_rendered_and_head_renders_nothing() {
        assert_eq!(slow_pages().len(), 2, "the two flamegraphs");
        let monitor = monitor();
        let http = HttpConfig::default();
        for (page, path, content_type) in [(0, "/flamegraph.svg", SVG), (1, "/flamegraph.folded", PLAIN)] {
            match answer(&monitor, &http, &request("GET", path, &[])) {
                Answer::Slow {
                    page: named,
                    content_type: typed,
                } => assert_eq!((named, typed), (page, content_type)),
                Answer::Reply(_) => panic!("{path} answered on the event loop"),
            }
            let Answer::Reply(reply) = answer(&monitor, &http, &request("HEAD", path, &[])) else {
                panic!("HEAD {path} waits for a render");
            };
            let head = finish(reply, &request("HEAD", path, &[("accept-encoding", "gzip")]), 0);
            assert_eq!(head.status(), StatusCode::OK);
            assert_eq!(head.headers()[header::CONTENT_TYPE], content_type);
            assert!(head.headers().get(header::CONTENT_ENCODING).is_none());
            assert_eq!(body(head), b"");
        }
        // Authentication still comes first.
        let patch: HttpPatch = serde_json::from_str(r#"{"bearer_token": "t"}"#).unwrap();
        let locked = HttpConfig::default().apply(patch).unwrap();
        let Answer::Reply(denied) = answer(&monitor, &locked, &request("GET", "/flamegraph.svg", &[])) else {
            panic!("a slow page without credentials");
        };
        assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn a_shared_render_is_sent_as_rendered_or_gzipped_ahead() {
        let rendered = Rendered::for_test(Bytes::from_static(b"<svg/>"), Some(Bytes::from_static(b"gz")));
        let reply = Reply::rendered(SVG, Some(&rendered));
        let plain = finish(reply, &request("GET", "/flamegraph.svg", &[]), 0);
        assert_eq!(plain.headers()[header::VARY], "Accept-Encoding");
        assert_eq!(body(plain), b"<svg/>");
        let reply = Reply::rendered(SVG, Some(&rendered));
        let gzipped = finish(
            reply,
            &request("GET", "/flamegraph.svg", &[("accept-encoding", "gzip")]),
            0,
        );
        assert_eq!(gzipped.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(body(gzipped), b"gz", "the gzip made with the render, not another one");
        let unavailable = finish(Reply::rendered(SVG, None), &request("GET", "/flamegraph.svg", &[]), 0);
        assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn index_links_every_route_with_its_line_and_keep_alive_is_limited() {
        let monitor = monitor();
        let http = HttpConfig::default();
        let index = respond(&monitor, &http, &request("GET", "/", &[]), 0);
        assert_eq!(index.headers()[header::CONTENT_TYPE], HTML);
        assert!(index.headers().get(header::CONNECTION).is_none());
        let page = String::from_utf8(body(index)).unwrap();
        let items: Vec<&str> = page.lines().filter(|line| line.starts_with("<li>")).collect();
        let expected: Vec<String> = ROUTES
            .iter()
            .map(|route| {
                let mut about = String::new();
                push_html_escaped(&mut about, route.about);
                format!("<li><a href=\"{0}\">{0}</a>: {about}</li>", route.path)
            })
            .collect();
        assert_eq!(items, expected, "one item per route, in table order");
        assert!(
            page.contains(
                "Sampling is off, so the flamegraphs are empty: turn it on with \
                 <code>{&quot;profiler&quot;: {&quot;sample_every&quot;: 100}}</code>."
            ),
            "{page}"
        );
        monitor.configure(r#"{"profiler": {"sample_every": 100}}"#).unwrap();
        let page = String::from_utf8(body(respond(&monitor, &http, &request("GET", "/", &[]), 0))).unwrap();
        assert!(
            page.contains("The flamegraphs sample 1 record in 100 on each thread."),
            "{page}"
        );

        let last = respond(
            &monitor,
            &http,
            &request("GET", "/", &[]),
            MAX_REQUESTS_PER_CONNECTION - 1,
        );
        assert_eq!(last.headers()[header::CONNECTION], "close");
    }

    /// What inferno's folded reader makes of `folded`: the SVG (colours fixed), or its error.
    fn inferno(folded: &str) -> std::io::Result<String> {
        let mut options = inferno::flamegraph::Options::default();
        options.deterministic = true;
        let mut svg = Vec::new();
        inferno::flamegraph::from_lines(&mut options, folded.lines(), &mut svg)?;
        Ok(String::from_utf8(svg).unwrap())
    }

    #[test]
    fn with_no_sample_the_folded_route_explains_in_comment_lines_flamegraph_tools_skip() {
        let monitor = monitor();
        let http = HttpConfig::default();
        assert_eq!(monitor.render_flamegraph_folded(), "", "the render itself stays empty");
        let folded = String::from_utf8(body(respond(
            &monitor,
            &http,
            &request("GET", "/flamegraph.folded", &[]),
            0,
        )))
        .unwrap();
        assert_eq!(
            folded,
            "# No sample taken: sampling is off, so there is no call stack to draw.\n\
             # Turn it on with the configuration {\"profiler\": {\"sample_every\": 100}} (1 record in 100 on each thread)\n\
             # through cache_monitor_configure (C) or Monitor::configure (Rust), record operations, then reload.\n\
             # Sampled stacks show here as folded lines: frame;frame;frame weight\n"
        );
        // inferno skips `# ` lines, and flamegraph.pl lines that do not end in a count: neither finds a
        // stack in the comment, and a stack after it is read as if the comment were not there.
        assert!(folded.lines().all(|line| !line.ends_with(|c: char| c.is_ascii_digit())));
        let nothing = inferno(&folded).unwrap_err();
        assert_eq!(nothing.to_string(), inferno("").unwrap_err().to_string());
        let with_stack = inferno(&format!("{folded}main;cache_monitor::get 7\n")).unwrap();
        assert_eq!(with_stack, inferno("main;cache_monitor::get 7\n").unwrap());
    }

    #[test]
    fn with_samples_the_folded_route_is_the_render_alone() {
        let monitor = Monitor::new();
        monitor.configure(r#"{"profiler": {"sample_every": 1}}"#).unwrap();
        monitor
            .record_with_frames(Operation::GET, Outcome::Hit, 1_000, b"user:1", "host.main;host.lookup")
            .unwrap();
        let http = HttpConfig::default();
        let folded = body(respond(&monitor, &http, &request("GET", "/flamegraph.folded", &[]), 0));
        assert_eq!(String::from_utf8(folded).unwrap(), monitor.render_flamegraph_folded());
        assert!(
            monitor
                .render_flamegraph_folded()
                .ends_with(";host.main;host.lookup;cache_monitor::get 1\n")
        );
    }

    #[test]
    fn with_no_sample_the_svg_route_is_the_monitors_explanation() {
        let monitor = monitor();
        let http = HttpConfig::default();
        let svg = respond(&monitor, &http, &request("GET", "/flamegraph.svg", &[]), 0);
        assert_eq!(svg.headers()[header::CONTENT_TYPE], SVG);
        let svg = String::from_utf8(body(svg)).unwrap();
        assert_eq!(svg, monitor.render_flamegraph_svg().unwrap());
        assert!(svg.contains("No sample taken: sampling is off"), "{svg}");
        assert!(!svg.contains("ERROR"), "{svg}");
    }
}
