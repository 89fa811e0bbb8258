"""The report in a real browser: headless Debian Chromium driven by Selenium (chromedriver).

The page is opened from disk (file://), as a reader would. Expectations are read from the
page's own embedded browser data, so the same test also runs against any built report:
INTRANEURON_REPORT=results/demo/report/models/smollm2.html (a model page). Without Chromium, chromedriver or selenium the
test is skipped, except under CI=true, where that is a failure (bash setup.sh test
installs them). INTRANEURON_UPDATE_SCREENSHOT=1 copies the screenshot to docs/report.png.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1400,1500", "--force-device-scale-factor=1"]


def _require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium Python package")
    if missing:
        reason = f"browser test needs {', '.join(missing)} (bash setup.sh test installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


MODELS = {"tiny": {"id": "tiny/synthetic", "weights": "pretrained", "layers": [0, 1]},
          "tiny-random": {"id": "tiny/synthetic", "weights": "random", "layers": [0, 1]}}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict[str, Path]:
    """A small report as the workflow lays it out, built once for every test here: the
    overview and two model pages, a trained model and its random-weights twin."""
    import pandas as pd
    from unit.test_report import synthetic_inputs

    from intraneuron.analysis.robustness import robustness_matrix, robustness_summary
    from intraneuron.report import build_report
    from intraneuron.report.overview import ModelVariant, build_overview

    directory = tmp_path_factory.mktemp("browser-report")
    inputs, config = synthetic_inputs(directory, n_neurons=24)
    inputs.update(_label_tables(inputs, directory))
    root = directory / "report"
    site = {"models": MODELS, "overview": str(root / "index.html")}
    pages = {}
    for name, info in MODELS.items():
        cfg = {**config, "model": {**config["model"], "weights": info["weights"],
                                   "init_seed": 3}}
        pages[name] = root / "models" / f"{name}.html"
        build_report(inputs, str(pages[name]), str(root / "models" / f"{name}_figures"), cfg,
                     "browser", site=site)
    tables = {k: pd.read_parquet(inputs[k]) for k in ("claims", "layers", "criteria")}
    pages["wordpiece"] = _wordpiece_page(inputs, config, root, site)
    runs = [ModelVariant(name, "base", tables["claims"], tables["layers"], {},
                         tables["criteria"]) for name in MODELS]
    matrix = robustness_matrix([(r.model, r.variant, r.claims) for r in runs], {"base": {}})
    build_overview(runs, matrix, robustness_summary(matrix), MODELS, str(root / "index.html"),
                   config, pages={k: str(v) for k, v in pages.items()})
    return {"overview": root / "index.html", **pages}


def _label_tables(inputs: dict, directory: Path) -> dict[str, str]:
    """The labelling stage's tables for every neuron: each cluster and segment named after its
    unit and number ("category cl2"), so the page must show the label of each one."""
    import pandas as pd

    from intraneuron.analysis.columns import conform
    from intraneuron.labels import distinct_layers, distinctness
    from intraneuron.labels.stage import token_sets
    from intraneuron.tables import atomic_parquet

    sets = token_sets(pd.read_parquet(inputs["tokens"]), 10)
    labels = sets.assign(label=[f"category {u}{i}" for u, i in zip(sets["unit"], sets["index"],
                                                                   strict=True)])
    neurons = distinctness(labels)
    paths = {}
    for name, frame in (("labels", labels), ("label_neurons", neurons),
                        ("label_layers", distinct_layers(neurons))):
        paths[name] = str(directory / f"{name}.parquet")
        atomic_parquet(conform(frame, name), paths[name], {"labeller": "local:test"})
    return paths


def _wordpiece_page(inputs: dict, config: dict, root: Path, site: dict) -> Path:
    """A page whose tokens are WordPiece pieces: words without a leading space, and at rank 0 a
    '##' piece that continues the word before it; the last core token's activation is 0."""
    import pandas as pd

    from intraneuron.report import build_report
    from intraneuron.tables import atomic_parquet

    tokens = pd.read_parquet(inputs["tokens"])
    tokens["token"] = tokens["token"].str.strip()
    first = tokens["rank"] == 0
    tokens.loc[first, "token"] = "##" + tokens.loc[first, "token"]
    tokens["context_left"] = "##ed the word"  # a context cut inside a word
    tokens["context_right"] = "went home"
    tokens.loc[tokens["rank"] == tokens["rank"].max(), "mean_activation"] = 0.0  # a zero bar
    path = root.parent / "wordpiece_tokens.parquet"
    atomic_parquet(tokens, str(path), {})
    page = root / "models" / "wordpiece.html"
    build_report({**inputs, "tokens": str(path)}, str(page),
                 str(root / "models" / "wordpiece_figures"), config, "wp", site=site)
    return page


@pytest.fixture(scope="module")
def report(site) -> Path:
    given = os.environ.get("INTRANEURON_REPORT")
    return Path(given).resolve() if given else site["tiny"]


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path_factory.getbasetemp())
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    drv.set_page_load_timeout(120)
    try:
        yield drv
    finally:
        drv.quit()


def _wait(predicate, timeout: float = 20.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _errors(drv) -> list[dict]:
    return [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"]


def _click(drv, element) -> None:
    """Click like a reader: first bring the element to mid-screen, clear of the sticky nav."""
    drv.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def _embedded(drv) -> dict:
    return json.loads(drv.execute_script(
        "return document.getElementById('browser-data').textContent;"))


def _block_file(page: Path, href: str) -> dict:
    """A data file of the neuron browser, read as the page reads it (one callback call)."""
    text = (page.parent / href).read_text(encoding="utf-8")
    return json.loads(text[text.index("(") + 1: text.rindex(")")])


def _neuron(page: Path, data: dict, layer: int, neuron: int) -> dict:
    """One neuron's entry, with its strings resolved, from the data file that holds it."""
    block = next(b for b in data["blocks"][str(layer)] if b[0] <= neuron <= b[1])
    raw = _block_file(page, block[2])
    entry = next(n for n in raw["neurons"] if n["neuron"] == neuron)
    strings = raw["strings"]
    return {**entry, "tok": [strings[t] for t in entry["tok"]]}


def _label(token: str) -> str:
    """How the page shows a token: spaces as ␣, newlines as ↵, tabs as ⇥."""
    return token.replace(" ", "\u2423").replace("\n", "\u21b5").replace("\t", "\u21e5") or "(empty)"


def _show(drv, layer: int, neuron: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(drv.find_element(By.ID, "nb-layer")).select_by_value(str(layer))
    box = drv.find_element(By.ID, "nb-neuron")
    box.clear()
    box.send_keys(str(neuron))
    _click(drv, drv.find_element(By.ID, "nb-show"))
    _wait(lambda: drv.execute_script(
        "var v = document.getElementById('nb-neuron-view');"
        "return v && v.dataset.layer === arguments[0] && v.dataset.neuron === arguments[1];",
        str(layer), str(neuron)), what=f"neuron {layer}/{neuron} to render")


def test_report_in_chromium(report, driver, tmp_path):
    from selenium.webdriver.common.by import By

    drv = driver
    drv.get(report.as_uri())
    _wait(lambda: drv.execute_script(
        "return document.documentElement.getAttribute('data-browser-ready') === '1';"),
        what="the neuron browser to initialise")
    drv.execute_script("document.documentElement.style.scrollBehavior = 'auto';")
    assert _errors(drv) == [], "console errors on load"
    n_images = drv.execute_script("return document.images.length;")
    assert n_images > 0
    _wait(lambda: drv.execute_script(
        "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0);"),
        what="every embedded figure to decode")

    # the verdicts at both levels and the tables they rest on are on the page
    for table in ("claims-table", "calibration-table"):
        assert drv.find_element(By.ID, table).find_elements(By.CSS_SELECTOR, "tbody tr")
    badges = drv.find_elements(By.CSS_SELECTOR, "#summary .layer-verdict .verdict")
    assert badges and len(badges) % 2 == 0  # exists and beyond geometry, per claim and layer
    assert drv.find_element(By.ID, "excluded-note").text

    data = _embedded(drv)
    assert not data["wordpiece"]  # byte-level BPE tokens carry their own spaces
    budget = 10  # the synthetic config's report.browser_neurons: the old page embedded these
    for layer in data["layers"]:
        ids = data["ids"][str(layer)]
        assert len(ids) > budget  # more neurons than a page of embedded ones held
        picked = {p[0] for p in data["picks"][str(layer)]}
        neuron = max(x for x in ids if x not in picked)
        _check_neuron(drv, report, data, layer, neuron)

    # a neuron that does not exist gets an explanation, not an error
    layer = data["layers"][-1]
    missing = max(data["ids"][str(layer)]) + 1000
    box = drv.find_element(By.ID, "nb-neuron")
    box.clear()
    box.send_keys(str(missing))
    _click(drv, drv.find_element(By.ID, "nb-show"))
    _wait(lambda: "has no neuron" in drv.find_element(By.ID, "nb-message").text,
          what="the message for a missing neuron")
    _check_search(drv, report, data)

    # screenshot of the browser showing the strongest neuron of the first layer
    first = data["layers"][0]
    _show(drv, first, data["picks"][str(first)][0][0])
    drv.execute_script("document.getElementById('browser').scrollIntoView();")
    time.sleep(0.3)
    shot = tmp_path / "report_screenshot.png"
    assert drv.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("INTRANEURON_UPDATE_SCREENSHOT") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, REPO / "docs" / "report.png")
    assert _errors(drv) == [], "console errors while browsing"


def _check_neuron(drv, page: Path, data: dict, layer: int, neuron: int) -> None:
    """Open a neuron from its data file: its core tokens in activation order (spaces shown as
    ␣), one bar each however small, its contexts, clusters and exclusion note."""
    from selenium.webdriver.common.by import By

    target = _neuron(page, data, layer, neuron)
    _show(drv, layer, neuron)
    chips = drv.find_elements(By.CSS_SELECTOR, "#nb-view .chips .chip")
    assert [c.get_attribute("textContent") for c in chips] == [_label(t) for t in target["tok"]]
    rows = drv.find_elements(By.CSS_SELECTOR, "#nb-contexts tbody tr")
    assert len(rows) == len(target["tok"])
    first = target["tok"][0]
    assert rows[0].find_element(By.TAG_NAME, "mark").get_attribute("textContent") == (
        first.strip() or first)
    heights = drv.execute_script(
        "return Array.from(document.querySelectorAll('#nb-view svg.strip rect'))"
        ".map(r => r.getBoundingClientRect().height);")
    assert len(heights) == len(target["tok"]) and min(heights) >= 1  # none invisible
    n_boundaries = sum(a != b for a, b in zip(target["seg"], target["seg"][1:], strict=False))
    assert len(drv.find_elements(By.CSS_SELECTOR, "#nb-view svg.strip line.boundary")) == (
        n_boundaries)
    legend = drv.find_element(By.CSS_SELECTOR, "#nb-view .cluster-legend").text
    for cluster in target["clusters"]:
        assert cluster[1] in legend
    labels = target.get("labels")  # the labelling stage's names, where it ran
    if labels:
        for cluster in target["clusters"]:
            assert f"\u201c{labels['cl'][str(cluster[0])]}\u201d" in legend
        titles = [t.text for t in drv.find_elements(By.CSS_SELECTOR, "#nb-view .segment-title")]
        assert titles and len(titles) == len(set(target["seg"]))
        for title, segment in zip(titles, sorted(set(target["seg"])), strict=True):
            assert title.endswith(f"\u201c{labels['seg'][str(segment)]}\u201d"), title
    notes = drv.find_elements(By.CSS_SELECTOR, "#nb-view .nb-excluded")
    assert len(notes) == (1 if target["excluded"] else 0)


def _search(drv, text: str, mode: str) -> set[tuple[int, int]]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(drv.find_element(By.ID, "nb-token-mode")).select_by_value(mode)
    query = drv.find_element(By.ID, "nb-token")
    query.clear()
    query.send_keys(text)
    drv.execute_script("document.getElementById('nb-results').textContent = '';")
    _click(drv, drv.find_element(By.ID, "nb-find"))
    links = _wait(lambda: drv.find_elements(By.CSS_SELECTOR, "#nb-token-hits li a"),
                  what="token search results")
    return {tuple(int(x) for x in a.get_attribute("href").split("#L")[1].split("N"))
            for a in links}


def _check_search(drv, page: Path, data: dict) -> None:
    """Exact search is case- and space-sensitive; loose search is neither; both find every
    neuron of every layer (read from the index files), not only suggested ones."""
    from selenium.webdriver.common.by import By

    index = {layer: _block_file(page, data["index"][str(layer)]) for layer in data["layers"]}
    token = next(t for t in index[data["layers"][0]]["tokens"] if t.startswith(" "))

    def where(match) -> set[tuple[int, int]]:
        return {(layer, ix["hits"][j][i]) for layer, ix in index.items()
                for j, t in enumerate(ix["tokens"]) if match(t)
                for i in range(0, len(ix["hits"][j]), 2)}

    exact = where(lambda t: t == token)
    loose = where(lambda t: token.strip().lower() in t.strip().lower())
    assert _search(drv, _label(token), "exact") == exact
    assert _search(drv, token.strip().upper(), "loose") == loose
    assert exact < loose or exact == loose
    link = drv.find_element(By.CSS_SELECTOR, "#nb-token-hits li a")
    href = link.get_attribute("href").split("#")[1]
    _click(drv, link)
    _wait(lambda: drv.execute_script(
        "var v = document.getElementById('nb-neuron-view');"
        "return v && ('L' + v.dataset.layer + 'N' + v.dataset.neuron) === arguments[0];", href),
        what="the clicked search hit to open")


def _open(drv, page: Path) -> None:
    """Load a page and wait for its neuron browser (if it has one); no smooth scrolling."""
    drv.get(page.as_uri())
    _wait(lambda: drv.execute_script(
        "return document.readyState === 'complete' && (!document.getElementById('browser-data')"
        " || document.documentElement.getAttribute('data-browser-ready') === '1');"),
        what=f"{page.name} to load")
    drv.execute_script("document.documentElement.style.scrollBehavior = 'auto';")


def _overflowing(drv) -> list[str]:
    """Tables (and their scroll wrappers) wider than the content column, by id or class."""
    return drv.execute_script("""
        var column = document.querySelector('main.wrap');
        var style = getComputedStyle(column);
        var width = column.clientWidth - parseFloat(style.paddingLeft) -
          parseFloat(style.paddingRight);
        return Array.from(document.querySelectorAll('main table')).filter(function (t) {
          return t.getBoundingClientRect().width > width + 1 ||
            (t.parentElement.scrollWidth > t.parentElement.clientWidth + 1);
        }).map(function (t) { return t.id || t.className; });""")


def test_key_tables_fit_at_1400_px(site, driver):
    """At 1,400 px no table of the overview or of a model page is wider than the content
    column (nothing hidden behind a sideways scroll); a table made too wide is caught."""
    for page in (site["overview"], site["tiny"]):
        _open(driver, page)
        assert driver.execute_script("return window.innerWidth;") == 1400
        assert _overflowing(driver) == [], page.name
    driver.execute_script(
        "document.getElementById('claims-table').style.minWidth = '2000px';")
    assert "claims" in " ".join(_overflowing(driver))  # the check sees an overflow


def test_control_page_is_unmistakable(site, driver):
    """The random-weights page says so in its title, header and summary, and links the
    trained model; the trained model's page links its control and the overview."""
    from selenium.webdriver.common.by import By

    _open(driver, site["tiny-random"])
    assert "random weights: control" in driver.title and "tiny-random" in driver.title
    header = driver.find_element(By.CSS_SELECTOR, "header.top.control")
    assert "random weights: control" in header.text.lower()
    summary = driver.find_element(By.ID, "summary").find_element(By.CLASS_NAME, "control-banner")
    assert summary.is_displayed() and "Random weights: control" in summary.text
    twin = header.find_element(By.CSS_SELECTOR, ".page-links a.twin")
    _click(driver, twin)
    _wait(lambda: driver.current_url.endswith("/tiny.html"), what="the trained model's page")
    assert "random weights" not in driver.title
    assert not driver.find_elements(By.CSS_SELECTOR, "header.top.control")
    _click(driver, driver.find_element(By.CSS_SELECTOR, ".page-links a.overview"))
    _wait(lambda: driver.current_url.endswith("/index.html"), what="the overview")
    assert driver.find_element(By.ID, "findings").text
    assert _errors(driver) == []


def test_wordpiece_contexts_read_as_text(site, driver):
    """WordPiece contexts are joined as text: a word piece after a space, a '##' piece glued to
    the word before it, never 'thewordcat'."""
    from selenium.webdriver.common.by import By

    _open(driver, site["wordpiece"])
    data = _embedded(driver)
    assert data["wordpiece"]
    layer = data["layers"][0]
    neuron = data["ids"][str(layer)][0]
    target = _neuron(site["wordpiece"], data, layer, neuron)
    _show(driver, layer, neuron)
    cells = [c.get_attribute("textContent") for c in
             driver.find_elements(By.CSS_SELECTOR, "#nb-contexts td.context")]
    assert cells[0] == "ed the word" + target["tok"][0][2:] + " went home"  # '##' piece glued
    assert cells[1] == "ed the word " + target["tok"][1] + " went home"
    heights = driver.execute_script(
        "return Array.from(document.querySelectorAll('#nb-view svg.strip rect'))"
        ".map(r => r.getBoundingClientRect().height);")
    assert target["act"][-1] == 0 and heights[-1] >= 1.5  # a zero bar stays visible
