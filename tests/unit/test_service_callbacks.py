"""``callbackUrl`` checks (no network: names are never resolved here)."""

from __future__ import annotations

import pytest

from service.errors import BadRequest
from service.jobs.callbacks import MAX_URL_LENGTH, check_callback_url


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/codexec",
        "http://hooks.example.com:8080/x?y=1",
        "https://93.184.216.34/hook",
        "https://[2606:4700::1111]/hook",
    ],
)
def test_public_http_urls_pass(url: str) -> None:
    assert check_callback_url(url, allow_private=False) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/x",
        "http://api.localhost/x",
        "http://127.0.0.1:9000/x",
        "http://10.1.2.3/x",
        "http://192.168.0.10/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[fd00::1]/x",
        "http://0.0.0.0/x",
        "http://224.0.0.1/x",
    ],
)
def test_private_targets_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(BadRequest) as refused:
        check_callback_url(url, allow_private=False)
    assert refused.value.field == "callbackUrl"
    assert check_callback_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        42,
        "ftp://hooks.example.com/x",
        "file:///etc/passwd",
        "https://",
        "hooks.example.com/x",
        "https://user:secret@hooks.example.com/x",
        "https://hooks.example.com:99999/x",
        "https://hooks.example.com/" + "x" * MAX_URL_LENGTH,
    ],
)
def test_malformed_urls_are_400(url: object) -> None:
    with pytest.raises(BadRequest) as refused:
        check_callback_url(url, allow_private=True)
    assert refused.value.field == "callbackUrl"


def test_absent_is_none() -> None:
    assert check_callback_url(None, allow_private=False) is None
