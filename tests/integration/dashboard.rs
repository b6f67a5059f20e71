//! The admin listener's dashboard (docs/operations.md "Dashboard"): after
//! known traffic, `/stats` and the page in a real headless Chromium show
//! the right counts, the charts are drawn, nothing is asked of another
//! origin, and a 400 px window does not scroll sideways.

use crate::browser::Browser;
use crate::harness::*;
use std::time::Duration;

/// 6 allowed, 3 without a credential, 2 with an unknown key, 1 missing scope.
async fn known_traffic(gw: &Gateway) {
    let client = gw.client();
    let mut ids = Vec::new();
    for i in 0..6 {
        let r = client
            .get(
                &gw.url(&format!("/orders/{i}")),
                &[("x-api-key", READER_KEY)],
            )
            .await;
        assert_eq!(r.status, 200);
        ids.push(r.request_id());
    }
    for _ in 0..3 {
        ids.push(client.get(&gw.url("/orders/1"), &[]).await.request_id());
    }
    for _ in 0..2 {
        let r = client
            .get(
                &gw.url("/orders/1"),
                &[("x-api-key", "agk_not-a-key-of-this-gateway")],
            )
            .await;
        ids.push(r.request_id());
    }
    let r = client
        .get(&gw.url("/admin/x"), &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(r.status, 403);
    ids.push(r.request_id());
    // Every response body finished (its log line is written with its stats).
    for id in ids {
        gw.log_for(&id).await;
    }
}

fn dashboard_gateway(extra_admin: &str) -> Gateway {
    Gateway::in_process(&format!(
        "upstream:\n  url: echo\n{ADMIN}{extra_admin}{}{STANDARD_ROUTES}",
        standard_keys()
    ))
}

#[tokio::test]
async fn stats_count_known_traffic_by_decision_reason_route_and_caller() {
    let gw = dashboard_gateway("");
    known_traffic(&gw).await;
    let (status, body) = admin_call(&gw, "GET", "/stats", None, "").await;
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(stats["window"]["requests"], 12, "{body}");
    assert_eq!(stats["window"]["refused"], 6);
    assert_eq!(stats["decisions"]["allowed"], 6);
    assert_eq!(stats["decisions"]["unauthenticated"], 3);
    assert_eq!(stats["decisions"]["invalid_token"], 2);
    assert_eq!(stats["decisions"]["forbidden"], 1);
    assert_eq!(stats["reasons"]["missing_credential"], 3);
    assert_eq!(stats["reasons"]["unknown_key"], 2);
    assert_eq!(stats["reasons"]["missing_scope"], 1);
    assert_eq!(stats["top_routes"][0]["name"], "orders-read");
    assert_eq!(stats["top_routes"][0]["requests"], 11);
    assert_eq!(stats["top_callers"][0]["name"], "reader");
    assert_eq!(stats["top_callers"][0]["requests"], 7);
    assert_eq!(stats["top_callers"][0]["refused"], 1);
    assert_eq!(stats["top_refused_callers"][0]["name"], "ip:127.0.0.1");
    assert_eq!(stats["top_refused_callers"][0]["refused"], 5);
    assert!(stats["window"]["p99_ms"].as_f64().is_some());
    assert!(!body.contains(READER_KEY) && !body.contains(ADMIN_TOKEN));
}

#[tokio::test]
async fn the_dashboard_page_shows_the_counts_draws_its_charts_and_fits_400_px() {
    let gw = dashboard_gateway("");
    known_traffic(&gw).await;
    let admin = format!("http://{}", gw.admin.expect("admin listener"));
    let (_, page) = admin_call(&gw, "GET", "/", None, "").await;
    assert!(!page.contains("://"), "the page names another origin");

    let browser = Browser::start(&[]).await;
    browser.goto(&format!("{admin}/")).await;
    browser.find("body[data-updated]").await;
    let text = |id: &'static str| {
        let browser = &browser;
        async move {
            browser
                .find(&format!("#{id}"))
                .await
                .text()
                .await
                .expect("text")
        }
    };
    assert_eq!(text("total-requests").await, "12");
    assert_eq!(text("total-refused").await, "6");
    let reasons = text("reasons").await;
    assert!(
        reasons.contains("missing_credential") && reasons.contains("unknown_key"),
        "{reasons}"
    );
    assert!(text("callers").await.contains("reader"));

    // Count the pixels of the colours the data lines are drawn in, which the
    // grid and the labels do not use. Requests per second: the blue of its
    // series (#2f6fdb). Latency: the blue p50 or the orange p99 (#d9822b),
    // drawn over it: latency quantiles come from buckets, so p50 often
    // equals p99 and the orange line then hides the blue one entirely.
    let painted = r#"const blue = [47, 111, 219], orange = [217, 130, 43];
    return [["chart-rps", [blue]], ["chart-latency", [blue, orange]]].map(([id, colours]) => {
        const c = document.getElementById(id);
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let ink = 0;
        for (let i = 0; i < d.length; i += 4)
          if (d[i + 3] > 200 && colours.some(([r, g, b]) =>
              Math.abs(d[i] - r) < 40 && Math.abs(d[i + 1] - g) < 40 && Math.abs(d[i + 2] - b) < 40)) ink++;
        return ink;
    });"#;
    let ink = browser
        .client
        .execute(painted, vec![])
        .await
        .expect("script");
    let ink: Vec<u64> = serde_json::from_value(ink).expect("numbers");
    assert!(ink.iter().all(|n| *n > 5), "a chart shows no data: {ink:?}");

    let origins = browser
        .client
        .execute(
            "return performance.getEntriesByType('resource').map((e) => new URL(e.name).origin);",
            vec![],
        )
        .await
        .expect("script");
    let origins: Vec<String> = serde_json::from_value(origins).expect("strings");
    assert!(!origins.is_empty(), "the page fetched its statistics");
    assert!(origins.iter().all(|o| *o == admin), "{origins:?}");

    browser
        .client
        .set_window_size(400, 900)
        .await
        .expect("resize");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let widths = browser
        .client
        .execute(
            "return [window.innerWidth, document.documentElement.scrollWidth, document.documentElement.clientWidth];",
            vec![],
        )
        .await
        .expect("script");
    let widths: Vec<u64> = serde_json::from_value(widths).expect("numbers");
    assert!(widths[0] <= 400, "{widths:?}");
    assert!(
        widths[1] <= widths[2],
        "the page scrolls sideways at 400 px: {widths:?}"
    );
    let body_text = text("error").await + &browser.text().await;
    assert!(!body_text.contains(READER_KEY));

    // A picture for the README (docs/dashboard.png is a copy of it).
    browser
        .client
        .set_window_size(1100, 1000)
        .await
        .expect("resize");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let png = browser.client.screenshot().await.expect("screenshot");
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png"),
        png,
    );
    browser.close().await;
}

#[tokio::test]
async fn with_the_dashboard_off_there_is_no_page_and_no_stats() {
    let gw = dashboard_gateway("  dashboard: false\n");
    known_traffic(&gw).await;
    for path in ["/", "/stats"] {
        let (status, _) = admin_call(&gw, "GET", path, None, "").await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = admin_call(&gw, "GET", "/metrics", None, "").await;
    assert_eq!(status, 200);
}
