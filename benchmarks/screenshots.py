"""Screenshots of a built report at 1,400 px, as a researcher first sees it, for docs/.

    python benchmarks/screenshots.py results/demo/report            # writes docs/*.png
    python benchmarks/screenshots.py results/demo/report --model smollm2 --out /tmp/shots

Takes the overview (index.html) and one model page (models/<model>.html, default: the first
trained model) in headless Chromium (Debian's chromium and chromedriver, driven by selenium) and
also reports how long the model page's neuron browser takes to open a neuron that sits in the
last data file of the last layer (loading that file from disk and drawing the neuron).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

WIDTH, HEIGHT = 1400, 1800
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-background-networking", "--force-device-scale-factor=1",
         f"--window-size={WIDTH},{HEIGHT}"]


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-shots-')}")
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait(drv, script: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not drv.execute_script(script):
        if time.monotonic() > end:
            raise TimeoutError(script)
        time.sleep(0.05)


def open_neuron_ms(drv, page: Path) -> tuple[float, str]:
    """Milliseconds to open the last neuron of the last layer (a fresh data file)."""
    data = json.loads(drv.execute_script(
        "return document.getElementById('browser-data').textContent;"))
    layer = data["layers"][-1]
    neuron = data["ids"][str(layer)][-1]
    start = time.perf_counter()
    drv.execute_script(f"window.location.hash = '#L{layer}N{neuron}';")
    wait(drv, "var v = document.getElementById('nb-neuron-view'); return v && "
              f"v.dataset.layer === '{layer}' && v.dataset.neuron === '{neuron}';")
    return 1000 * (time.perf_counter() - start), f"layer {layer} neuron {neuron}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the report folder (holds index.html)")
    parser.add_argument("--model", help="model page to take (default: first trained model)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "docs")
    args = parser.parse_args()
    pages = sorted((args.report / "models").glob("*.html"))
    model = (args.report / "models" / f"{args.model}.html" if args.model else
             next((p for p in pages if "random" not in p.stem), pages[0] if pages else None))
    args.out.mkdir(parents=True, exist_ok=True)
    drv = chromium()
    try:
        drv.get((args.report / "index.html").resolve().as_uri())
        wait(drv, "return document.readyState === 'complete';")
        drv.save_screenshot(str(args.out / "overview.png"))
        if model is not None:
            drv.get(model.resolve().as_uri())
            wait(drv, "return document.documentElement.getAttribute('data-browser-ready');")
            drv.save_screenshot(str(args.out / "report.png"))
            ms, which = open_neuron_ms(drv, model)
            print(f"{model.name}: opened {which} in {ms:.0f} ms")
    finally:
        drv.quit()
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
