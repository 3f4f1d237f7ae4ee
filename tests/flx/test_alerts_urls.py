"""Alert URL lists from config and `FLX_ALERT_URLS`."""

from __future__ import annotations

from flx.alerts.urls import merge_alert_urls, parse_alert_urls


def test_parse_empty() -> None:
    assert parse_alert_urls(None) == []
    assert parse_alert_urls("  ") == []


def test_parse_keeps_commas_inside_a_url() -> None:
    value = "json://127.0.0.1:8080/hook, slack://T1/B2/C3 ,mailto://u:p@example.com?to=a@b.com,c@d.com"
    assert parse_alert_urls(value) == [
        "json://127.0.0.1:8080/hook",
        "slack://T1/B2/C3",
        "mailto://u:p@example.com?to=a@b.com,c@d.com",
    ]


def test_merge_config_then_env_without_duplicates() -> None:
    env = {"FLX_ALERT_URLS": "json://h:1/a,json://h:2/b"}
    assert merge_alert_urls(["json://h:2/b", "slack://x/y/z"], env) == [
        "json://h:2/b",
        "slack://x/y/z",
        "json://h:1/a",
    ]
    assert merge_alert_urls(["slack://x/y/z"], {}) == ["slack://x/y/z"]
