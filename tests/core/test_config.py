"""Settings: defaults that follow other settings."""

from __future__ import annotations

from channels.registry import Settings


def test_the_public_url_follows_the_api_port_unless_set() -> None:
    # CC_API_PORT=18001 make run: vendors must post to 18001, not to the default 8000.
    assert Settings(api_port=18001).public_base_url == "http://127.0.0.1:18001"
    assert Settings(api_host="10.1.2.3", api_port=80).public_base_url == "http://10.1.2.3:80"
    given = Settings(api_port=18001, public_base_url="https://cc.example.com")
    assert given.public_base_url == "https://cc.example.com"
