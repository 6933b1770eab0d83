"""URLs the user gives (HF_ENDPOINT, --base-url) never reach an output with their secrets: the
userinfo and every query or fragment value are redacted, in `gptoss check --json` and in the
results file."""

import json

import pytest
from click.testing import CliRunner

from bench.cli import main
from diagnostics import probes as P
from diagnostics.redact import REDACTED, redact_text, redact_url
from diagnostics.sources import Sources
from diagnostics.testing import make_facts

SECRET = "s3cr3tT0ken"


@pytest.mark.parametrize("url, expected", [
    (f"https://{SECRET}@hub.example.com", f"https://{REDACTED}@hub.example.com"),
    (f"https://user:{SECRET}@hub.example.com:8443/api", f"https://{REDACTED}@hub.example.com:8443/api"),
    (f"http://127.0.0.1:8000/v1?api_key={SECRET}", f"http://127.0.0.1:8000/v1?api_key={REDACTED}"),
    (f"http://h/v1?a=1&key={SECRET};b=2#token={SECRET}",
     f"http://h/v1?a={REDACTED}&key={REDACTED};b={REDACTED}#token={REDACTED}"),
    (f"http://h/v1?{SECRET}", f"http://h/v1?{REDACTED}"),
    ("http://h/v1?flag=", "http://h/v1?flag="),
    ("https://hub.example.com/path", "https://hub.example.com/path"),
    ("not a url", "not a url"),
    ("http://[::1", "http://[::1"),
])
def test_redact_url(url, expected):
    assert redact_url(url) == expected
    assert redact_url(expected) == expected  # idempotent


def test_every_url_in_a_text_is_redacted_and_the_text_around_it_stays():
    text = f"GET https://{SECRET}@h/x?api_key={SECRET}&n=1 failed (see http://h/y?t={SECRET}). Retry."
    out = redact_text(text)
    assert SECRET not in out
    assert out == (f"GET https://{REDACTED}@h/x?api_key={REDACTED}&n={REDACTED} failed "
                   f"(see http://h/y?t={REDACTED}). Retry.")
    assert redact_text(out) == out


def test_a_token_as_the_username_of_hf_endpoint_is_redacted_at_probe_time(tmp_path):
    env = {"HF_ENDPOINT": f"https://{SECRET}@hub.example.com/mirror?sig={SECRET}"}
    facts = P.probe_environment(Sources(environ=env, home=str(tmp_path)))
    assert facts.variables["HF_ENDPOINT"] == f"https://{REDACTED}@hub.example.com/mirror?sig={REDACTED}"


def test_check_json_never_prints_the_token_in_hf_endpoint():
    facts = make_facts("H100", env={"HF_ENDPOINT": f"https://{SECRET}@hub.example.com"})
    r = CliRunner().invoke(main, ["check", "--json"], obj={"check_injected": {"facts": facts}})
    assert r.exit_code == 0, r.output
    assert SECRET not in r.output
    doc = json.loads(r.stdout)
    assert doc["facts"]["environment"]["variables"]["HF_ENDPOINT"] == f"https://{REDACTED}@hub.example.com"


def test_the_results_file_never_holds_a_url_secret(tmp_path):
    """Config, backend, environment and messages: every string is redacted when the file is written."""
    from bench import results as R
    from tests.factories import make_results

    res = make_results()
    res.config = {"base_url": f"http://127.0.0.1:8000/v1?api_key={SECRET}", "model": "openai/gpt-oss-20b"}
    res.backend = {"kind": "openai", "base_url": f"https://{SECRET}@llm.example.com/v1"}
    res.environment = {"facts": {"environment": {"variables": {"HF_ENDPOINT": f"https://{SECRET}@hub.example.com"}}}}
    res.warn("error", f"GET https://llm.example.com/v1/models?token={SECRET} failed")
    path = R.save(res, tmp_path / "results.json")
    text = path.read_text()
    assert SECRET not in text
    back = R.load(path)
    assert back.config["base_url"] == f"http://127.0.0.1:8000/v1?api_key={REDACTED}"
    assert back.config["model"] == "openai/gpt-oss-20b" and back.model.id == res.model.id
