"""report.md and the compare PR comment make every string from a results file inert, as the HTML
report does: no raw HTML, no image or link, no link definition, no code span can be injected."""

import re

from bench import results as R
from reports import render
from reports.compare import render_markdown
from bench.tracking.compare import compare
from reports.markdown_text import md_code, md_text
from tests.factories import KEY, KEY2, make_results

IMG = '<img src="http://tracker.example/pixel.png">'
SCRIPT = "<script>alert(1)</script>"
IMAGE_MD = "![x](http://tracker.example/md.png)"
LINK_DEF = "[ref]: http://tracker.example/def"


def hostile_results(run_id="run-hostile"):
    res = make_results({KEY: {"decode_tok_s": [10.0, 11.0, 12.0]}, KEY2: {}}, run_id=run_id,
                       model_id=f"org/model{IMG}", env={"gpu": f"GPU {SCRIPT}"},
                       statuses={KEY2: "error"})
    res.case(KEY2).message = f"{LINK_DEF}\nboom {IMAGE_MD} `code` [a][ref]"
    res.warn(f"x]: http://tracker.example/w", f"look {IMAGE_MD} {IMG}")
    return res


CODE_SPAN = re.compile(r"(?<![`\\])(`+)(?!`)(.+?)(?<!`)\1(?!`)")


def assert_inert(md: str) -> None:
    md = CODE_SPAN.sub("CODE", md)  # a code span shows its content as text, whatever it holds
    assert "<img" not in md and "<script" not in md
    assert not re.search(r"(?<!\\)\]\(http", md), "an unescaped ](url) makes a link or an image"
    assert not re.search(r"(?<!\\)\]\[", md), "an unescaped ][ makes a reference link"
    assert not re.search(r"(?m)^\s*(?:[-*]\s+)?\[[^\]\n]*(?<!\\)\]:", md), "a line may not define a link"


def test_report_md_escapes_raw_html_and_markdown_from_the_results(tmp_path):
    files = render([hostile_results()], tmp_path, formats=["md", "html"])
    md = files.markdown.read_text()
    assert_inert(md)
    assert "&lt;img src=" in md and "&lt;script&gt;" in md  # the text is shown, not dropped
    html = files.html.read_text()
    assert "<img src=\"http://tracker" not in html and "&lt;img" in html  # as the HTML report already did


def test_compare_markdown_escapes_what_the_results_hold():
    base, current = hostile_results("run-a"), hostile_results("run-b")
    current.case(KEY).metrics["decode_tok_s"] = R.Stat.of([5.0, 5.1, 5.2])
    md = render_markdown(compare(base, current, base_label=f"base `{IMG}`", current_label=IMG, allow_mismatch=True))
    assert_inert(md.replace("<details><summary>All metrics</summary>", "").replace("</details>", "")
                 .replace("<sub>", "").replace("</sub>", ""))


def test_the_escapes():
    assert md_text("[contention] GPU busy") == "[contention] GPU busy"  # ordinary brackets stay readable
    assert md_text("E [CUDA]: out of resource") == "E [CUDA]: out of resource"
    assert md_text(IMAGE_MD) == r"![x\](http://tracker.example/md.png)"
    assert md_text(LINK_DEF) == r"[ref\]: http://tracker.example/def"
    assert md_text("a <b> & c") == "a &lt;b&gt; &amp; c"
    assert md_code("a`b") == "``a`b``" and md_code("`x") == "`` `x ``"
